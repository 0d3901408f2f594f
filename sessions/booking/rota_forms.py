"""Forms of the rota page: shape only; the rota's rules live in `rota_rules` and `rota_services`."""

from __future__ import annotations

import datetime as dt
from typing import Any

from crispy_forms.layout import Column
from crispy_forms.layout import Fieldset
from crispy_forms.layout import Row
from django import forms
from django.utils.html import format_html

from kaemdr.forms import form_helper
from sessions.booking import rota_rules
from sessions.models import Weekday

SPANS_ON_THE_PAGE = rota_rules.MOST_SPANS_A_DAY
"""Working spans a day the page offers: as many as the rota takes (a split shift), as the API."""


def _time(label: str) -> forms.TimeField:
    return forms.TimeField(
        required=False,
        label=label,
        widget=forms.TimeInput(attrs={"type": "time", "step": 300}, format="%H:%M"),
    )


class WorkingHoursForm(forms.Form):
    """A week of working hours: a row per weekday with a from/to pair, and a second pair for a split
    shift. Both times of a pair empty: no span. A day with no span is a day off."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        days = []
        for day, label in Weekday.choices:
            columns = []
            for number in range(1, SPANS_ON_THE_PAGE + 1):
                which = "" if number == 1 else "Second "
                self.fields[f"starts_{day}_{number}"] = _time(f"{which}from".capitalize())
                self.fields[f"ends_{day}_{number}"] = _time(f"{which}to".capitalize())
                columns += [
                    Column(f"starts_{day}_{number}", css_class="col-6 col-md-3"),
                    Column(f"ends_{day}_{number}", css_class="col-6 col-md-3"),
                ]
            # A fieldset per day: its legend names the day for each time in it ("Monday", "From").
            legend = format_html('<span class="fs-6 fw-semibold">{}</span>', label)
            days.append(Fieldset(legend, Row(*columns), css_class="rota-day border-bottom pt-2 mb-2"))
        self.helper = form_helper(*days)

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        for day, label in Weekday.choices:
            for number in range(1, SPANS_ON_THE_PAGE + 1):
                starts, ends = cleaned.get(f"starts_{day}_{number}"), cleaned.get(f"ends_{day}_{number}")
                if f"starts_{day}_{number}" in self.errors or f"ends_{day}_{number}" in self.errors:
                    continue
                if (starts is None) != (ends is None):
                    self.add_error(f"ends_{day}_{number}", f"Give both times for {label}, or neither.")
                elif starts is not None and ends is not None and starts >= ends:
                    self.add_error(f"ends_{day}_{number}", "The end must be after the start.")
        return cleaned

    def hours(self) -> list[tuple[int, dt.time, dt.time]]:
        """The spans given, as the service takes them: (weekday, starts, ends)."""
        data = self.cleaned_data
        return [
            (day, data[f"starts_{day}_{number}"], data[f"ends_{day}_{number}"])
            for day, _ in Weekday.choices
            for number in range(1, SPANS_ON_THE_PAGE + 1)
            if data.get(f"starts_{day}_{number}") and data.get(f"ends_{day}_{number}")
        ]

    @staticmethod
    def initial_for(spans: list[rota_rules.WorkingSpan]) -> dict[str, Any]:
        initial: dict[str, Any] = {}
        for day, _ in Weekday.choices:
            for number, span in enumerate((s for s in spans if s.weekday == day), start=1):
                if number > SPANS_ON_THE_PAGE:
                    break
                initial[f"starts_{day}_{number}"] = span.starts
                initial[f"ends_{day}_{number}"] = span.ends
        return initial


class LeaveForm(forms.Form):
    """A leave period: from a day (and time, else its start) until a day (and time, else its end), so
    whole days of leave need only the dates."""

    start_date = forms.DateField(
        label="From (date)", widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d")
    )
    start_time = _time("From (time, optional)")
    end_date = forms.DateField(
        label="Until (date)", widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d")
    )
    end_time = _time("Until (time, optional)")
    reason = forms.CharField(
        max_length=rota_rules.LEAVE_REASON_LENGTH,
        required=False,
        label="Reason (optional)",
        help_text="Seen by clinic admins only, e.g. annual leave, training.",
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.helper = form_helper(
            Row(Column("start_date", css_class="col-6"), Column("start_time", css_class="col-6")),
            Row(Column("end_date", css_class="col-6"), Column("end_time", css_class="col-6")),
            "reason",
        )

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        for name in ("start_date", "end_date"):
            day = cleaned.get(name)
            if day is not None and not dt.date(2000, 1, 1) <= day <= dt.date(2999, 12, 30):
                self.add_error(name, "Give a date between 2000 and 2999.")
        return cleaned

    def starts_at(self, tz: dt.tzinfo) -> dt.datetime:
        data = self.cleaned_data
        return dt.datetime.combine(data["start_date"], data.get("start_time") or dt.time.min, tzinfo=tz)

    def ends_at(self, tz: dt.tzinfo) -> dt.datetime:
        """The end as given; with no time, the end of the day (the next day's midnight)."""
        data = self.cleaned_data
        if data.get("end_time") is not None:
            return dt.datetime.combine(data["end_date"], data["end_time"], tzinfo=tz)
        return dt.datetime.combine(data["end_date"] + dt.timedelta(days=1), dt.time.min, tzinfo=tz)


class LeaveRemoveForm(forms.Form):
    leave = forms.UUIDField(widget=forms.HiddenInput)
