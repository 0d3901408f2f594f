"""Integration in the demo clinic: Oliver Brandt (HB-1006) has had three dosing sessions; the first
two have signed integration notes with experiments under way, and the last one's integration session
is overdue. Tomás Reyes's (HB-1004) esketamine session has its check-ins due. Grace Nakamura (HB-1007)
completed her course last week: her outcome measures are due 1, 3 and 6 months after it, the first
within the month."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.utils import timezone

from kaemdr.models import User
from pathways.models import Pathway
from pathways.models import Stage
from sessions.demo import demo_past_session
from sessions.models import DosingSession

from . import rules
from . import services
from .models import FollowUp
from .models import FollowUpStatus


def _follow_ups_at_demo_time(session: DosingSession) -> None:
    """The session was signed now and then moved back to its demo day: schedule its follow-ups again
    from the moved times, with the messages of the past already sent, as they would have been."""
    session.refresh_from_db()
    FollowUp.objects.filter(dosing_session=session).delete()
    services.follow_ups_schedule_after_session(session=session)
    now = timezone.now()
    for follow_up in FollowUp.objects.filter(dosing_session=session, notify_at__lte=now):
        follow_up.notified_at = follow_up.notify_at
        follow_up.save(update_fields=["notified_at"])
    # The visit's reminder went out the day before, as it would have.
    booking = session.booking
    FollowUp.objects.filter(booking=booking, kind="visit_reminder").update(
        due_at=booking.starts_at,
        notify_at=booking.starts_at - dt.timedelta(days=1),
        notified_at=booking.starts_at - dt.timedelta(days=1),
        status=FollowUpStatus.DONE,
        done_at=booking.starts_at - dt.timedelta(days=1),
        outcome="Reminder sent.",
    )


def _course_outcomes_at_demo_time(pathway: Pathway, *, completed_at: dt.datetime) -> None:
    """The course was completed now and its timeline then moved back to its demo day: schedule its
    outcome follow-ups again from that day (the first falls due within the month)."""
    FollowUp.objects.filter(pathway=pathway, kind=rules.FollowUpKind.COURSE_OUTCOME).delete()
    services.course_outcome_schedule(pathway=pathway, completed_at=completed_at)


def _check_ins_done(session: DosingSession, by: User, outcomes: dict[int, str]) -> None:
    for follow_up in FollowUp.objects.filter(
        dosing_session=session, kind="check_in", status=FollowUpStatus.OPEN
    ):
        if follow_up.sequence in outcomes:
            services.follow_up_complete(actor=by, follow_up=follow_up, outcome=outcomes[follow_up.sequence])
            FollowUp.objects.filter(pk=follow_up.pk).update(done_at=follow_up.due_at + dt.timedelta(hours=2))


def _note(
    *,
    therapist: User,
    pathway: Pathway,
    session: DosingSession,
    days_after: int,
    answers: dict[str, str],
    add: tuple[tuple[str, str], ...] = (),
    review: tuple[tuple[str, str, str], ...] = (),
) -> None:
    assert session.dose_started_at is not None
    held = session.dose_started_at + dt.timedelta(days=days_after, hours=1)
    note = services.note_open(actor=therapist, pathway=pathway, dosing_session=session, held_at=held)
    services.note_update(actor=therapist, note=note, **answers)
    for area, description in add:
        services.experiment_add(actor=therapist, note=note, area=area, description=description)
    for description, state, happened in review:
        experiment = pathway.experiments.get(description=description)
        services.experiment_review(
            actor=therapist, note=note, experiment=experiment, state=state, what_happened=happened
        )
    services.note_sign(actor=therapist, note=note)
    from .models import IntegrationNote

    IntegrationNote.objects.filter(pk=note.pk).update(signed_at=held + dt.timedelta(hours=1))


HB_1006_DOSE_APPROVAL = (
    "Little effect at 70 mg over two sessions and no cravings since; 200 mg sublingual agreed with him "
    "after titration, within the clinic's protocol. Observe for 2 hours."
)


def demo_integration(
    *, pathway: Pathway, to_stage: str | None, at: dt.datetime, staff: dict[str, User], **_: Any
) -> None:
    record = pathway.patient.record_number
    if record == "HB-1006" and to_stage == Stage.INTEGRATION:
        # Dosed while the pathway was in dosing (a dose starts only there); its notes come at the end.
        # The last dose, titrated above the clinic's sublingual range, was approved by the prescriber.
        for days_ago, dose_mg, approval in ((26, 70, ""), (12, 70, ""), (5, 200, HB_1006_DOSE_APPROVAL)):
            demo_past_session(
                pathway=pathway, staff=staff, days_ago=days_ago, dose_mg=dose_mg, dose_approval=approval
            )
        return
    if to_stage is not None:
        return
    if record == "HB-1007" and pathway.stage == Stage.COMPLETED:
        _course_outcomes_at_demo_time(pathway, completed_at=at)
        return
    if record == "HB-1004":
        for session in DosingSession.objects.filter(booking__pathway=pathway, status="signed"):
            _follow_ups_at_demo_time(session)
            _check_ins_done(
                session, staff["monitor@demo.kaemdr.test"], {1: "Reached by phone: resting, no concerns."}
            )
        return
    if record != "HB-1006":
        return
    therapist = staff["therapist@demo.kaemdr.test"]
    first, second, latest = list(
        DosingSession.objects.filter(booking__pathway=pathway).order_by("dose_started_at")
    )
    _follow_ups_at_demo_time(first)
    _note(
        therapist=therapist,
        pathway=pathway,
        session=first,
        days_after=2,
        answers={
            "perception_shift": "Could look at the accident memory 'from the hillside' without bracing.",
            "newly_possible": "Saying 'I did what I could' without arguing back.",
            "afraid_of_losing": "The part that keeps watch is afraid of being caught off guard again.",
            "free_notes": "Grounded well at close; container used.",
        },
        add=(
            ("sleep", "Lights out by 23:00 on weeknights, phone charging outside the bedroom."),
            ("self_attack", "Notice the 'useless' voice and answer it with one kind sentence."),
        ),
    )
    _check_ins_done(
        first,
        therapist,
        {1: "Reached by phone: tired, settled.", 3: "Reached: sleeping better.", 7: "Reached."},
    )
    _follow_ups_at_demo_time(second)
    _note(
        therapist=therapist,
        pathway=pathway,
        session=second,
        days_after=2,
        answers={
            "perception_shift": "The sense of threat in crowds felt 'further away'.",
            "newly_possible": "Going to the Saturday market with his sister.",
            "afraid_of_losing": "Feeling prepared; worried that relaxing means forgetting.",
        },
        add=(("avoidance", "Walk through the market for ten minutes on Saturday, with his sister."),),
        review=(
            (
                "Lights out by 23:00 on weeknights, phone charging outside the bedroom.",
                "tried",
                "Four nights of five.",
            ),
            (
                "Notice the 'useless' voice and answer it with one kind sentence.",
                "kept",
                "Now does it without prompting.",
            ),
        ),
    )
    _check_ins_done(
        second,
        therapist,
        {1: "Reached by phone.", 3: "Left a message; called back the same day.", 7: "Reached."},
    )
    _follow_ups_at_demo_time(latest)
    _check_ins_done(
        latest,
        therapist,
        {1: "Reached by phone: a little flat, safety plan reviewed.", 3: "Reached: settled, sleeping."},
    )
    # The repeat measures recorded at the end (screening's demo) scheduled the next ones from their
    # past dates: what fell due before now was sent then, as it would have been.
    for follow_up in FollowUp.objects.filter(
        pathway=pathway, status=FollowUpStatus.OPEN, notified_at__isnull=True, notify_at__lte=timezone.now()
    ):
        follow_up.notified_at = follow_up.notify_at
        follow_up.save(update_fields=["notified_at"])
