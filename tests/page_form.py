"""Press a button of a page as a browser does: every control of the button's form is sent (those placed
elsewhere on the page with `form="id"` included), with what the test typed over the page's own values,
to the button's `formaction` or the form's action."""

from __future__ import annotations

from django.http import HttpResponse
from django.test import Client

from .test_every_form import parse_page
from .test_every_form import submissions


def press(
    client: Client,
    page: str,
    *,
    action: str,
    typed: dict[str, str | list[str]],
    button: tuple[str, str] | None = None,
) -> HttpResponse:
    """Open `page`, type `typed` into its controls, and press the submit button that posts to `action`
    (the one named `button[0]` with value `button[1]` when several do). Fails when a typed name is no
    control of that button's form: the browser would not send it."""
    html = client.get(page).content.decode()
    for form in parse_page(html).forms:
        names = {control.name for control in form.controls if control.name}
        for submission in submissions(form):
            if submission.method != "post" or submission.action != action:
                continue
            data = submission.as_dict()
            if button is not None and data.get(button[0]) != [button[1]]:
                continue
            missing = set(typed) - names
            assert not missing, f"{sorted(missing)} are not sent with the button posting to {action}"
            for name, value in typed.items():
                data[name] = value if isinstance(value, list) else [value]
            return client.post(action, data)
    raise AssertionError(f"No button of {page} posts to {action}")
