"""Forms for staff management, the audit-log filter and sign-in."""

from __future__ import annotations

from typing import Any

from crispy_forms.helper import FormHelper
from crispy_forms.layout import Layout
from crispy_forms.layout import Submit
from django import forms
from django.contrib.auth.forms import AuthenticationForm

from .models import Role

SIGN_IN_USERNAME_MAX_LENGTH = 254
"""No account's email is longer (`User.email`); the lock-out records keep at most 255 characters."""


def form_helper(*layout: Any) -> FormHelper:
    """A crispy helper for a form the page wraps in its own <form> tag (so one page can post several),
    laid out in the given order when fields are named."""
    helper = FormHelper()
    helper.form_tag = False
    if layout:
        helper.layout = Layout(*layout)
    return helper


class SignInForm(AuthenticationForm):
    def clean_username(self) -> str:
        """An email longer than any account's is a failed sign-in, said as such, without trying it
        (Django sets the field's length after the field is made, so it does not check it itself)."""
        username: str = self.cleaned_data.get("username") or ""
        if len(username) > SIGN_IN_USERNAME_MAX_LENGTH:
            raise self.get_invalid_login_error()
        return username

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["username"].label = "Email"
        self.fields["username"].widget.attrs.update({"autocomplete": "email", "autofocus": True})
        self.helper = FormHelper()
        self.helper.add_input(Submit("submit", "Sign in", css_class="w-100"))


class PasswordResetRequestForm(forms.Form):
    email = forms.EmailField(label="Email", help_text="The address you sign in with.")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["email"].widget.attrs.update({"autocomplete": "email", "autofocus": True})
        self.helper = FormHelper()
        self.helper.add_input(Submit("submit", "Email me a link", css_class="w-100"))


class StaffInviteForm(forms.Form):
    full_name = forms.CharField(max_length=150, label="Full name")
    email = forms.EmailField(
        label="Email", help_text="They sign in with it and receive the invitation there."
    )
    role = forms.ChoiceField(choices=Role.choices, label="Role")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.helper = FormHelper()
        self.helper.add_input(Submit("submit", "Add and send invitation"))
