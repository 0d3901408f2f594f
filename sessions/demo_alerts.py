"""Safety alerts that stop dosing, for the demo clinic: each raised by a repeat measure after the
screening was signed, once the patient's sessions are booked (`demo_dosing` runs first).

- Aisha Rahman (HB-1005): a repeat PHQ-9 with item 9 above 0, yesterday, still open. Her next dose,
  and any new booking, are refused until someone records the action taken or a prescriber signs a
  dosing override ("Book a session" shows why).
- Tomás Reyes (HB-1004): the same finding two days ago, reviewed by the prescriber, who signed a
  dosing override with the reason: the alert stays open on the dashboards, and his sessions go ahead.
"""

from __future__ import annotations

import datetime as dt

from django.utils import timezone

from kaemdr.models import User
from pathways.models import Pathway
from screening import services as screening_services
from screening.models import SafetyAlert

# Record number: (days ago, who records it, the prescriber's override reason or "" to leave it open).
DEMO_ALERTS: dict[str, tuple[int, str, str]] = {
    "HB-1005": (1, "therapist2@demo.kaemdr.test", ""),
    "HB-1004": (
        2,
        "therapist@demo.kaemdr.test",
        "Seen in clinic the same day: passive thoughts, no plan or intent; safety plan updated with "
        "his partner. Dosing may continue with the prescriber onsite; PHQ-9 again before each dose.",
    ),
}
PHQ9_ITEM9_ONE = [2, 2, 2, 2, 1, 1, 1, 1, 1]


def demo_alerts(*, pathway: Pathway, to_stage: str | None, at: dt.datetime, staff: dict[str, User]) -> None:
    """At the end of each demo pathway: the alerts of `DEMO_ALERTS`, through the services."""
    demo = DEMO_ALERTS.get(pathway.patient.record_number)
    if to_stage is not None or demo is None or not pathway.is_open:
        return
    days_ago, recorder, override_reason = demo
    when = timezone.now() - dt.timedelta(days=days_ago)
    response = screening_services.measure_record(
        actor=staff[recorder],
        pathway=pathway,
        instrument="phq9",
        answers=PHQ9_ITEM9_ONE,
        administered_at=when,
    )
    SafetyAlert.objects.filter(measure_response=response).update(raised_at=when)
    if override_reason:
        for alert in SafetyAlert.objects.filter(measure_response=response):
            screening_services.safety_alert_dosing_override_sign(
                actor=pathway.prescriber, alert=alert, reason=override_reason
            )
        # Signed the afternoon it was raised (demo only: the override's time, not who or why).
        SafetyAlert.objects.filter(measure_response=response).update(
            dosing_override_at=when + dt.timedelta(hours=4)
        )
