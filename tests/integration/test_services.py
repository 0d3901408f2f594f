"""Integration's services: notes and experiments (who may write, what is refused, signed is read-only),
follow-ups scheduled and closed by the records that cause them, and the dispatcher's exactly-once send."""

from __future__ import annotations

import datetime as dt
import smtplib
import threading
from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest
from django.core import mail
from django.core.exceptions import ValidationError
from django.core.mail.backends import locmem
from django.db import OperationalError
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from integration import services
from integration.models import Experiment
from integration.models import FollowUp
from integration.models import IntegrationNote
from integration.models import IntegrationSettings
from kaemdr.exceptions import NotFoundOrForbidden
from kaemdr.models import AuditEvent
from kaemdr.models import Role
from pathways import services as pathway_services
from pathways.models import Stage
from screening import services as screening_services
from sessions.booking import services as dosing
from sessions.models import DosingSession
from sessions.record import services as record_services

from ..conftest import require_postgres
from ..factories import FollowUpFactory
from ..factories import PathwayFactory
from ..factories import UserFactory

pytestmark = pytest.mark.django_db

PHQ9_MILD = [1, 1, 1, 1, 1, 0, 0, 0, 0]
CLINICAL_WORDS = (
    "ketamine",
    "esketamine",
    "dose",
    "dosing",
    "emdr",
    "trauma",
    "ptsd",
    "phq",
    "integration",
    "mrn-",
)


@pytest.fixture
def session(dosing_pathway: Any, complete_session: Callable[..., DosingSession]) -> DosingSession:
    return complete_session(dosing_pathway)


def follow_ups(pathway: Any) -> dict[tuple[str, int], FollowUp]:
    return {(f.kind, f.sequence): f for f in FollowUp.objects.filter(pathway=pathway)}


# --- notes -------------------------------------------------------------------------------------------


def test_the_pathways_therapist_writes_signs_and_then_only_adds(
    staff: dict[str, Any], session: DosingSession
) -> None:
    therapist = staff[Role.THERAPIST]
    pathway = session.booking.pathway
    note = services.note_open(actor=therapist, pathway=pathway)
    assert note.dosing_session == session
    assert note.status == "draft"
    # a second tab (or a double click) opens the same draft
    assert services.note_open(actor=therapist, pathway=pathway).pk == note.pk
    services.note_update(actor=therapist, note=note, perception_shift="The memory felt further away.")
    signed = services.note_sign(actor=therapist, note=note)
    assert signed.status == "signed"
    assert signed.signed_at is not None
    with pytest.raises(ValidationError, match="read-only"):
        services.note_update(actor=therapist, note=note, free_notes="changed after signing")
    with pytest.raises(ValidationError, match="read-only"):
        services.experiment_add(actor=therapist, note=note, area="sleep", description="Bed by eleven.")
    assert IntegrationNote.objects.get(pk=note.pk).free_notes == ""
    services.note_addendum_add(actor=therapist, note=note, text="Patient called: clarify the date.")
    actions = list(
        AuditEvent.objects.filter(target_public_id=note.public_id)
        .order_by("id")
        .values_list("action", flat=True)
    )
    assert actions == [
        "integration.note_opened",
        "integration.note_updated",
        "integration.note_signed",
        "integration.note_addendum_added",
    ]


def test_only_the_care_teams_therapist_writes_notes(
    staff: dict[str, Any], session: DosingSession, make_user: Any
) -> None:
    pathway = session.booking.pathway
    other_therapist = make_user(role=Role.THERAPIST)
    for actor in (staff[Role.PRESCRIBER], staff[Role.MONITOR], staff[Role.CLINIC_ADMIN], other_therapist):
        with pytest.raises(NotFoundOrForbidden):
            services.note_open(actor=actor, pathway=pathway)
    assert not IntegrationNote.objects.exists()


def test_a_note_on_another_clinics_pathway_is_refused(staff: dict[str, Any], other_clinic: Any) -> None:
    foreign = PathwayFactory(clinic=other_clinic, stage=Stage.DOSING)
    with pytest.raises(NotFoundOrForbidden):
        services.note_open(actor=staff[Role.THERAPIST], pathway=foreign)
    assert not IntegrationNote.objects.exists()


def test_a_note_needs_a_completed_session_of_the_pathway(
    staff: dict[str, Any], dosing_pathway: Any, complete_session: Callable[..., DosingSession], therapist: Any
) -> None:
    with pytest.raises(ValidationError) as refused:
        services.note_open(actor=therapist, pathway=dosing_pathway)
    assert refused.value.message_dict["dosing_session"] == [
        "An integration note follows a completed dosing session; this pathway has none yet."
    ]
    other = PathwayFactory(clinic=dosing_pathway.clinic, therapist=therapist, stage=Stage.DOSING)
    from ..factories import SignedScreeningFactory

    SignedScreeningFactory(pathway=other)
    someone_elses = complete_session(other)
    with pytest.raises(ValidationError, match="signed dosing session of this pathway"):
        services.note_open(actor=therapist, pathway=dosing_pathway, dosing_session=someone_elses)
    assert not IntegrationNote.objects.filter(pathway=dosing_pathway).exists()


def test_an_empty_note_cannot_be_signed_and_times_are_checked(
    staff: dict[str, Any], session: DosingSession
) -> None:
    therapist = staff[Role.THERAPIST]
    note = services.note_open(actor=therapist, pathway=session.booking.pathway)
    with pytest.raises(ValidationError, match="at least one of the prompts"):
        services.note_sign(actor=therapist, note=note)
    with pytest.raises(ValidationError) as future:
        services.note_update(actor=therapist, note=note, held_at=timezone.now() + dt.timedelta(days=1))
    assert "held_at" in future.value.message_dict
    with pytest.raises(ValidationError) as before:
        services.note_update(
            actor=therapist, note=note, held_at=session.dose_started_at - dt.timedelta(hours=1)
        )
    assert before.value.message_dict["held_at"] == ["An integration session comes after the dose it follows."]
    assert IntegrationNote.objects.get(pk=note.pk).status == "draft"


def test_only_the_author_signs_or_adds(staff: dict[str, Any], session: DosingSession, make_user: Any) -> None:
    therapist = staff[Role.THERAPIST]
    note = services.note_open(actor=therapist, pathway=session.booking.pathway)
    services.note_update(actor=therapist, note=note, newly_possible="Saying no at work.")
    colleague = make_user(role=Role.THERAPIST)
    with pytest.raises(NotFoundOrForbidden):
        services.note_sign(actor=colleague, note=note)
    with pytest.raises(NotFoundOrForbidden):
        services.note_sign(actor=staff[Role.PRESCRIBER], note=note)


# --- experiments -------------------------------------------------------------------------------------


def test_experiments_are_agreed_and_tracked_from_note_to_note(
    staff: dict[str, Any], session: DosingSession
) -> None:
    therapist = staff[Role.THERAPIST]
    pathway = session.booking.pathway
    first = services.note_open(actor=therapist, pathway=pathway)
    sleep = services.experiment_add(
        actor=therapist, note=first, area="sleep", description="Lights out by 23:00."
    )
    services.experiment_add(
        actor=therapist, note=first, area="boundaries", description="Decline Thursday overtime."
    )
    services.note_update(actor=therapist, note=first, perception_shift="Less braced.")
    services.note_sign(actor=therapist, note=first)
    second = services.note_open(actor=therapist, pathway=pathway)
    assert second.pk != first.pk
    services.experiment_review(actor=therapist, note=second, experiment=sleep, state="tried")
    kept = services.experiment_review(
        actor=therapist, note=second, experiment=sleep, state="kept", what_happened="Five nights of five."
    )
    assert kept.state == "kept"
    assert kept.what_happened == "Five nights of five."
    history = list(sleep.updates.order_by("id").values_list("from_state", "to_state", "note_id"))
    assert history == [("planned", "tried", second.pk), ("tried", "kept", second.pk)]
    assert {
        e.description for e in Experiment.objects.filter(pathway=pathway, state__in=["planned", "tried"])
    } == {"Decline Thursday overtime."}


def test_an_experiment_without_a_description_is_refused_and_nothing_is_written(
    staff: dict[str, Any], session: DosingSession
) -> None:
    therapist = staff[Role.THERAPIST]
    note = services.note_open(actor=therapist, pathway=session.booking.pathway)
    with pytest.raises(ValidationError) as refused:
        services.experiment_add(actor=therapist, note=note, area="sleep", description="   ")
    assert refused.value.message_dict["description"][0].startswith("Say exactly what the experiment is")
    with pytest.raises(ValidationError) as bad_area:
        services.experiment_add(actor=therapist, note=note, area="diet", description="Less sugar.")
    assert bad_area.value.message_dict == {"area": ["Choose an area."]}
    assert not Experiment.objects.exists()
    assert not AuditEvent.objects.filter(action="integration.experiment_added").exists()


def test_kept_needs_what_happened_and_moves_go_forward(staff: dict[str, Any], session: DosingSession) -> None:
    therapist = staff[Role.THERAPIST]
    note = services.note_open(actor=therapist, pathway=session.booking.pathway)
    experiment = services.experiment_add(
        actor=therapist, note=note, area="avoidance", description="Market walk."
    )
    with pytest.raises(ValidationError) as refused:
        services.experiment_review(actor=therapist, note=note, experiment=experiment, state="kept")
    assert refused.value.message_dict == {
        "what_happened": ["Say what happened: the next session starts from it."]
    }
    services.experiment_review(actor=therapist, note=note, experiment=experiment, state="tried")
    with pytest.raises(ValidationError) as backwards:
        services.experiment_review(actor=therapist, note=note, experiment=experiment, state="planned")
    assert "state" in backwards.value.message_dict
    assert Experiment.objects.get(pk=experiment.pk).state == "tried"


def test_an_experiment_of_another_pathway_cannot_be_reviewed(
    staff: dict[str, Any],
    session: DosingSession,
    complete_session: Callable[..., DosingSession],
    therapist: Any,
) -> None:
    from ..factories import SignedScreeningFactory

    other = PathwayFactory(
        clinic=session.clinic, therapist=therapist, prescriber=staff[Role.PRESCRIBER], stage=Stage.DOSING
    )
    SignedScreeningFactory(pathway=other)
    complete_session(other)
    theirs = services.note_open(actor=therapist, pathway=other)
    foreign = services.experiment_add(
        actor=therapist, note=theirs, area="sleep", description="Earlier nights."
    )
    mine = services.note_open(actor=therapist, pathway=session.booking.pathway)
    with pytest.raises(NotFoundOrForbidden):
        services.experiment_review(actor=therapist, note=mine, experiment=foreign, state="tried")


# --- follow-ups: scheduling and closing --------------------------------------------------------------


def test_a_completed_session_schedules_its_follow_ups_once(
    staff: dict[str, Any], session: DosingSession
) -> None:
    pathway = session.booking.pathway
    found = follow_ups(pathway)
    assert set(found) == {
        ("visit_reminder", 0),
        ("integration_session", 0),
        ("check_in", 1),
        ("check_in", 3),
        ("check_in", 7),
        ("outcome_measures", 0),
    }
    integration = found[("integration_session", 0)]
    assert integration.due_at == session.dose_started_at + dt.timedelta(hours=72)
    assert integration.responsible == staff[Role.THERAPIST]
    assert found[("outcome_measures", 0)].responsible == staff[Role.PRESCRIBER]
    # the handler runs again (a retried event): nothing new
    assert services.follow_ups_schedule_after_session(session=session) == []
    assert FollowUp.objects.filter(pathway=pathway).count() == 6
    assert (
        AuditEvent.objects.filter(action="follow_up.scheduled", target_public_id=session.public_id).count()
        == 1
    )


def test_clinic_timings_shape_the_schedule(
    staff: dict[str, Any], dosing_pathway: Any, complete_session: Callable[..., DosingSession], clinic: Any
) -> None:
    IntegrationSettings.objects.create(clinic=clinic, integration_window_hours=48, check_in_days="2, 5")
    session = complete_session(dosing_pathway)
    found = follow_ups(dosing_pathway)
    assert {key for key in found if key[0] == "check_in"} == {("check_in", 2), ("check_in", 5)}
    assert found[("integration_session", 0)].due_at == session.dose_started_at + dt.timedelta(hours=48)


def test_signing_the_note_closes_the_integration_follow_up(
    staff: dict[str, Any], session: DosingSession
) -> None:
    therapist = staff[Role.THERAPIST]
    pathway = session.booking.pathway
    note = services.note_open(actor=therapist, pathway=pathway)
    services.note_update(actor=therapist, note=note, afraid_of_losing="Being ready for the worst.")
    services.note_sign(actor=therapist, note=note)
    closed = follow_ups(pathway)[("integration_session", 0)]
    assert (closed.status, closed.done_by, closed.outcome) == ("done", therapist, "Integration note signed.")
    assert follow_ups(pathway)[("check_in", 1)].status == "open"


def test_measures_taken_again_close_the_follow_up_and_schedule_the_next(
    staff: dict[str, Any], session: DosingSession
) -> None:
    pathway = session.booking.pathway
    taken = timezone.now()
    screening_services.measure_record(
        actor=staff[Role.THERAPIST],
        pathway=pathway,
        instrument="phq9",
        answers=PHQ9_MILD,
        administered_at=taken,
    )
    measures = FollowUp.objects.filter(pathway=pathway, kind="outcome_measures").order_by("id")
    assert [m.status for m in measures] == ["done", "open"]
    assert measures[1].due_at.date() == (taken + dt.timedelta(weeks=4)).date()


def test_filing_the_monitoring_form_closes_its_follow_up(
    staff: dict[str, Any], session: DosingSession, clinic: Any
) -> None:
    # the same record as esketamine: the form follow-up exists and closes when filed
    DosingSession.objects.filter(pk=session.pk).update(pmf_required=True)
    session.booking.__class__.objects.filter(pk=session.booking_id).update(agent="esketamine")
    FollowUp.objects.filter(dosing_session=session).delete()
    session.refresh_from_db()
    services.follow_ups_schedule_after_session(session=session)
    form = FollowUp.objects.get(dosing_session=session, kind="monitoring_form")
    assert form.responsible == staff[Role.PRESCRIBER]
    record_services.pmf_mark_filed(actor=staff[Role.MONITOR], session=session)
    assert FollowUp.objects.get(pk=form.pk).status == "done"


def test_moving_and_cancelling_a_booking_moves_and_cancels_its_reminder(
    staff: dict[str, Any], dosing_pathway: Any, room: Any, clinic: Any
) -> None:
    import zoneinfo

    tz = zoneinfo.ZoneInfo(clinic.time_zone)
    day = timezone.localdate() + dt.timedelta(days=5)
    booking = dosing.booking_create(
        actor=staff[Role.CLINIC_ADMIN],
        pathway=dosing_pathway,
        room=room,
        starts_at=dt.datetime.combine(day, dt.time(9, 0), tzinfo=tz),
        prescriber=staff[Role.PRESCRIBER],
        monitor=staff[Role.MONITOR],
    )
    reminder = FollowUp.objects.get(booking=booking)
    assert reminder.notify_at == dt.datetime.combine(day - dt.timedelta(days=1), dt.time(10), tzinfo=tz)
    assert reminder.responsible == staff[Role.MONITOR]
    FollowUp.objects.filter(pk=reminder.pk).update(notified_at=timezone.now())  # sent already
    later = dt.datetime.combine(day + dt.timedelta(days=2), dt.time(11, 0), tzinfo=tz)
    dosing.booking_move(actor=staff[Role.CLINIC_ADMIN], booking=booking, starts_at=later)
    reminder.refresh_from_db()
    assert reminder.due_at == later
    assert reminder.notified_at is None
    assert reminder.notify_at == dt.datetime.combine(
        later.date() - dt.timedelta(days=1), dt.time(10), tzinfo=tz
    )
    dosing.booking_cancel(actor=staff[Role.CLINIC_ADMIN], booking=booking, reason="Patient unwell.")
    reminder.refresh_from_db()
    assert (reminder.status, reminder.outcome) == ("cancelled", "The booking was cancelled.")
    assert FollowUp.objects.filter(booking=booking).count() == 1


def test_a_closed_pathway_cancels_what_is_open(staff: dict[str, Any], session: DosingSession) -> None:
    pathway = session.booking.pathway
    pathway_services.pathway_move(
        actor=staff[Role.PRESCRIBER], pathway=pathway, to_stage=Stage.DISCONTINUED, reason="Moved abroad."
    )
    assert set(FollowUp.objects.filter(pathway=pathway).values_list("status", flat=True)) <= {
        "cancelled",
        "done",
    }
    assert not FollowUp.objects.filter(pathway=pathway, status="open").exists()


def test_check_ins_are_recorded_by_hand_and_other_kinds_only_by_a_prescriber(
    staff: dict[str, Any], session: DosingSession
) -> None:
    found = follow_ups(session.booking.pathway)
    check_in = found[("check_in", 1)]
    with pytest.raises(ValidationError) as empty:
        services.follow_up_complete(actor=staff[Role.MONITOR], follow_up=check_in, outcome="  ")
    assert "outcome" in empty.value.message_dict
    done = services.follow_up_complete(
        actor=staff[Role.MONITOR], follow_up=check_in, outcome="Reached by phone."
    )
    assert (done.status, done.done_by) == ("done", staff[Role.MONITOR])
    with pytest.raises(ValidationError, match="already closed"):
        services.follow_up_complete(actor=staff[Role.THERAPIST], follow_up=check_in, outcome="Again.")
    measures = found[("outcome_measures", 0)]
    for actor in (staff[Role.THERAPIST], staff[Role.MONITOR], staff[Role.CLINIC_ADMIN]):
        with pytest.raises(NotFoundOrForbidden):
            services.follow_up_complete(actor=actor, follow_up=measures, outcome="Declined.")
    services.follow_up_complete(
        actor=staff[Role.PRESCRIBER], follow_up=measures, outcome="Patient declined today."
    )
    with pytest.raises(NotFoundOrForbidden):
        services.follow_up_complete(
            actor=staff[Role.PRESCRIBER], follow_up=found[("visit_reminder", 0)], outcome="Not a task."
        )


def test_a_check_in_in_another_clinic_is_refused(staff: dict[str, Any], other_clinic: Any) -> None:
    foreign = FollowUpFactory(pathway=PathwayFactory(clinic=other_clinic))
    with pytest.raises(NotFoundOrForbidden):
        services.follow_up_complete(actor=staff[Role.THERAPIST], follow_up=foreign, outcome="Reached.")
    assert FollowUp.objects.get(pk=foreign.pk).status == "open"


# --- follow-ups: dispatch ----------------------------------------------------------------------------


def staff_message_id(follow_up: FollowUp) -> str:
    return f"<follow-up-{follow_up.public_id}-staff@kaemdr.local>"


def refuse_staff_emails_of(monkeypatch: pytest.MonkeyPatch, refused: list[FollowUp]) -> None:
    """The mail server drops the connection on the staff email of each of `refused` (a retryable
    failure), and accepts every other message."""
    refused_ids = {staff_message_id(follow_up) for follow_up in refused}
    original_send = locmem.EmailBackend.send_messages

    def send_messages(self: locmem.EmailBackend, messages: Any) -> int:
        if any(message.extra_headers["Message-ID"] in refused_ids for message in messages):
            raise smtplib.SMTPServerDisconnected("Connection unexpectedly closed")
        return original_send(self, messages)

    monkeypatch.setattr(locmem.EmailBackend, "send_messages", send_messages)


def sent_message_ids() -> Counter[str]:
    return Counter(message.extra_headers["Message-ID"] for message in mail.outbox)


def audited(action: str, follow_up: FollowUp) -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(action=action, target_public_id=follow_up.public_id))


def test_dispatch_sends_what_is_due_once(staff: dict[str, Any], session: DosingSession) -> None:
    mail.outbox.clear()
    sent = services.follow_ups_dispatch_due()
    integration = follow_ups(session.booking.pathway)[("integration_session", 0)]
    assert sent == 1
    assert integration.notified_at is not None
    assert [m.to for m in mail.outbox] == [[staff[Role.THERAPIST].email]]
    message = mail.outbox[0]
    assert message.subject.startswith("Integration session due ")
    assert session.booking.patient.record_number in message.subject
    assert f"/integration/follow-ups/{integration.public_id}/" in message.body
    assert message.extra_headers["Message-ID"] == f"<follow-up-{integration.public_id}-staff@kaemdr.local>"
    assert services.follow_ups_dispatch_due() == 0
    assert len(mail.outbox) == 1
    assert (
        AuditEvent.objects.filter(action="follow_up.sent", target_public_id=integration.public_id).count()
        == 1
    )


def test_patient_emails_only_where_enabled_and_without_clinical_detail(
    staff: dict[str, Any], session: DosingSession, clinic: Any
) -> None:
    pathway = session.booking.pathway
    check_in = follow_ups(pathway)[("check_in", 1)]
    FollowUp.objects.filter(pk=check_in.pk).update(notify_at=timezone.now() - dt.timedelta(minutes=1))
    mail.outbox.clear()
    services.follow_ups_dispatch_due()
    assert all(m.to != [pathway.patient.email] for m in mail.outbox)  # not enabled: staff only
    IntegrationSettings.objects.create(clinic=clinic, patient_emails_enabled=True)
    import zoneinfo

    tz = zoneinfo.ZoneInfo(clinic.time_zone)
    day = timezone.localdate() + dt.timedelta(days=1)
    booking = dosing.booking_create(
        actor=staff[Role.CLINIC_ADMIN],
        pathway=pathway,
        room=session.booking.room,
        starts_at=dt.datetime.combine(day, dt.time(16, 0), tzinfo=tz),
        prescriber=staff[Role.PRESCRIBER],
        monitor=staff[Role.MONITOR],
    )
    FollowUp.objects.filter(booking=booking).update(notify_at=timezone.now() - dt.timedelta(minutes=1))
    FollowUp.objects.filter(pk=check_in.pk).update(notified_at=None, notify_at=timezone.now())
    mail.outbox.clear()
    services.follow_ups_dispatch_due()
    to_patient = [m for m in mail.outbox if m.to == [pathway.patient.email]]
    assert {m.subject for m in to_patient} == {
        f"Your appointment at {clinic.name}",
        f"A call from {clinic.name}",
    }
    reminder = next(m for m in to_patient if m.subject.startswith("Your appointment"))
    assert f"{day:%A} {day.day} {day:%B} at 16:00" in reminder.body
    assert "adult who will take you home" in reminder.body
    for message in to_patient:
        text = (message.subject + message.body).lower()
        assert not [word for word in CLINICAL_WORDS if word in text], text
        assert pathway.patient.record_number.lower() not in text
    assert FollowUp.objects.get(booking=booking).status == "done"  # a reminder's whole job is its message
    assert FollowUp.objects.get(pk=check_in.pk).patient_notified


def test_a_failed_send_is_kept_for_a_retry(
    staff: dict[str, Any], session: DosingSession, settings: Any
) -> None:
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT, settings.EMAIL_TIMEOUT = "127.0.0.1", 9, 1  # nothing listens
    assert services.follow_ups_dispatch_due() == 0
    integration = follow_ups(session.booking.pathway)[("integration_session", 0)]
    assert integration.notified_at is None
    assert integration.attempts == 1
    assert integration.last_error
    assert integration.notify_at > timezone.now()  # tried again in a minute
    assert AuditEvent.objects.filter(
        action="follow_up.send_failed", target_public_id=integration.public_id
    ).exists()
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    FollowUp.objects.filter(pk=integration.pk).update(notify_at=timezone.now())
    mail.outbox.clear()
    assert services.follow_ups_dispatch_due() == 1
    assert len(mail.outbox) == 1


def test_a_reminder_for_a_visit_already_begun_is_not_sent(staff: dict[str, Any], dosing_pathway: Any) -> None:
    follow_up = FollowUpFactory(pathway=dosing_pathway, kind="visit_reminder", sequence=0)
    booking = dosing_pathway.bookings.create(
        clinic=dosing_pathway.clinic,
        patient=dosing_pathway.patient,
        room=__import__("tests.factories", fromlist=["RoomFactory"]).RoomFactory(
            clinic=dosing_pathway.clinic
        ),
        starts_at=timezone.now() - dt.timedelta(minutes=5),
        ends_at=timezone.now() + dt.timedelta(hours=2),
        agent="ketamine",
        route="sublingual",
        prescriber=staff[Role.PRESCRIBER],
        monitor=staff[Role.MONITOR],
        booked_by=staff[Role.CLINIC_ADMIN],
    )
    FollowUp.objects.filter(pk=follow_up.pk).update(booking=booking)
    mail.outbox.clear()
    assert services.follow_ups_dispatch_due() == 0
    assert mail.outbox == []
    cancelled = FollowUp.objects.get(pk=follow_up.pk)
    assert cancelled.status == "cancelled"
    assert cancelled.done_at is not None
    assert cancelled.notified_at is None
    assert cancelled.outcome == "The visit had begun or was no longer booked when the reminder was due."
    assert cancelled.updated_at > follow_up.updated_at
    assert [event.actor_label for event in audited("follow_up.cancelled", follow_up)] == ["system"]
    assert audited("follow_up.sent", follow_up) == []


@pytest.mark.django_db(transaction=True)
def test_two_dispatchers_at_once_send_each_follow_up_once(monkeypatch: pytest.MonkeyPatch) -> None:
    require_postgres()
    monkeypatch.setattr(services, "DISPATCH_READ_AHEAD", 5)  # eight reads to share out
    rows = FollowUpFactory.create_batch(40)
    mail.outbox.clear()
    barrier = threading.Barrier(2)
    results: list[int] = []

    def dispatcher() -> None:
        try:
            barrier.wait()
            results.append(services.follow_ups_dispatch_due())
        finally:
            connection.close()

    threads = [threading.Thread(target=dispatcher) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert sum(results) == 40
    ids = [m.extra_headers["Message-ID"] for m in mail.outbox]
    assert len(ids) == len(set(ids)) == 40
    assert {f"<follow-up-{r.public_id}-staff@kaemdr.local>" for r in rows} == set(ids)
    assert not FollowUp.objects.filter(notified_at__isnull=True).exists()


def test_dispatch_failing_mid_batch_keeps_that_row_for_a_retry_and_sends_the_others_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    rows = FollowUpFactory.create_batch(5, pathway=PathwayFactory())
    failing = rows[2]
    refuse_staff_emails_of(monkeypatch, [failing])
    mail.outbox.clear()
    now = timezone.now()

    assert services.follow_ups_dispatch_due(now=now) == 4

    others = [row for row in rows if row != failing]
    assert sent_message_ids() == {staff_message_id(row): 1 for row in others}
    assert not FollowUp.objects.filter(pk__in=[row.pk for row in others], notified_at__isnull=True).exists()
    for row in others:
        assert [event.data for event in audited("follow_up.sent", row)] == [
            {"kind": "check_in", "patient_notified": False}
        ]
    kept = FollowUp.objects.get(pk=failing.pk)
    assert kept.notified_at is None
    assert kept.attempts == 1
    assert kept.notify_at == now + dt.timedelta(minutes=1)  # rules.retry_delay(1)
    assert kept.last_error == "SMTPServerDisconnected: Connection unexpectedly closed"
    assert audited("follow_up.sent", kept) == []
    assert [event.data for event in audited("follow_up.send_failed", kept)] == [
        {"kind": "check_in", "attempts": 1}
    ]

    monkeypatch.undo()
    assert services.follow_ups_dispatch_due(now=now) == 0  # not before its back-off
    assert services.follow_ups_dispatch_due(now=now + dt.timedelta(minutes=1)) == 1
    assert sent_message_ids() == {staff_message_id(row): 1 for row in rows}
    kept.refresh_from_db()
    assert (kept.attempts, kept.last_error) == (1, "")
    assert kept.notified_at is not None


def test_dispatch_stops_at_three_failures_in_a_row_and_leaves_the_rest_untouched(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    rows = FollowUpFactory.create_batch(6, pathway=PathwayFactory())
    refuse_staff_emails_of(monkeypatch, rows[1:4])
    mail.outbox.clear()

    assert services.follow_ups_dispatch_due() == 1

    assert sent_message_ids() == {staff_message_id(rows[0]): 1}
    assert FollowUp.objects.get(pk=rows[0].pk).notified_at is not None
    assert len(audited("follow_up.sent", rows[0])) == 1
    for row in rows[1:4]:
        failed = FollowUp.objects.get(pk=row.pk)
        assert (failed.notified_at, failed.attempts) == (None, 1)
        assert len(audited("follow_up.send_failed", row)) == 1
    for row in rows[4:]:  # never tried
        untried = FollowUp.objects.get(pk=row.pk)
        assert (untried.notified_at, untried.attempts, untried.last_error) == (None, 0, "")
        assert untried.notify_at == row.notify_at
        assert not AuditEvent.objects.filter(target_public_id=row.public_id).exists()


def lose_the_database_at_recording(monkeypatch: pytest.MonkeyPatch, *, call: int) -> None:
    """The `call`-th follow-up's recording fails, after its messages went out and before its commit:
    what a worker killed, or a database lost, at that moment leaves behind."""
    original = services._audit_append
    calls = 0

    def recording(event: AuditEvent) -> None:
        nonlocal calls
        calls += 1
        if calls == call:
            raise OperationalError("server closed the connection unexpectedly")
        original(event)

    monkeypatch.setattr(services, "_audit_append", recording)


def test_dispatch_lost_before_its_commit_sends_that_one_follow_up_again_and_no_other(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    rows = FollowUpFactory.create_batch(5, pathway=PathwayFactory())
    lose_the_database_at_recording(monkeypatch, call=3)
    mail.outbox.clear()

    with pytest.raises(OperationalError):
        services.follow_ups_dispatch_due()

    # The first two are recorded; the third went out but is not; the others were never tried.
    assert sent_message_ids() == {staff_message_id(row): 1 for row in rows[:3]}
    assert set(FollowUp.objects.filter(notified_at__isnull=False).values_list("pk", flat=True)) == {
        rows[0].pk,
        rows[1].pk,
    }
    assert AuditEvent.objects.filter(action="follow_up.sent").count() == 2

    monkeypatch.undo()
    assert services.follow_ups_dispatch_due() == 3
    assert sent_message_ids() == {
        staff_message_id(rows[0]): 1,
        staff_message_id(rows[1]): 1,
        staff_message_id(rows[2]): 2,  # the one in flight: the duplicate its fixed Message-ID names
        staff_message_id(rows[3]): 1,
        staff_message_id(rows[4]): 1,
    }
    assert AuditEvent.objects.filter(action="follow_up.sent").count() == 5
    for row in rows:
        assert len(audited("follow_up.sent", row)) == 1


@pytest.mark.django_db(transaction=True)
def test_dispatch_commits_each_follow_up_before_sending_the_next_without_waiting_for_the_disk(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Seen from another connection at each hand-over: every follow-up sent before it is recorded
    (committed, with its audit event) and this one is not yet; and the transaction sending it has
    `synchronous_commit` off, which the dispatcher's connection has not once the run is over."""
    require_postgres()
    rows = FollowUpFactory.create_batch(4, pathway=PathwayFactory())
    original_send = locmem.EmailBackend.send_messages
    seen: list[tuple[int, int, str]] = []

    def recorded_elsewhere() -> tuple[int, int]:
        counts: list[int] = []

        def count() -> None:
            try:
                counts.append(FollowUp.objects.filter(notified_at__isnull=False).count())
                counts.append(AuditEvent.objects.filter(action="follow_up.sent").count())
            finally:
                connection.close()

        thread = threading.Thread(target=count)
        thread.start()
        thread.join(timeout=30)
        return counts[0], counts[1]

    def send_messages(self: locmem.EmailBackend, messages: Any) -> int:
        with connection.cursor() as cursor:
            cursor.execute("SHOW synchronous_commit")
            (synchronous_commit,) = cursor.fetchone()
        seen.append((*recorded_elsewhere(), synchronous_commit))
        return original_send(self, messages)

    monkeypatch.setattr(locmem.EmailBackend, "send_messages", send_messages)
    mail.outbox.clear()

    assert services.follow_ups_dispatch_due() == 4

    assert seen == [(0, 0, "off"), (1, 1, "off"), (2, 2, "off"), (3, 3, "off")]
    with connection.cursor() as cursor:
        cursor.execute("SHOW synchronous_commit")
        assert cursor.fetchone() == ("on",)
    assert sent_message_ids() == {staff_message_id(row): 1 for row in rows}


def test_dispatch_takes_the_same_queries_for_every_follow_up() -> None:
    def dispatch_queries(rows: int) -> int:
        FollowUpFactory.create_batch(rows, pathway=PathwayFactory())
        with CaptureQueriesContext(connection) as captured:
            assert services.follow_ups_dispatch_due() == rows
        return len(captured)

    dispatch_queries(1)  # on PostgreSQL, the first run on a connection prepares its two statements
    # A run reads the due rows and their clinic's settings, and reads again to find nothing more;
    # each follow-up is then its own transaction (here a savepoint and its release, the test's
    # transaction standing in for the commit) holding two statements: the claim that marks it sent
    # and its audit event.
    assert dispatch_queries(3) == 3 + 4 * 3
    assert dispatch_queries(9) == 3 + 4 * 9


def test_settings_are_validated_and_audited(staff: dict[str, Any]) -> None:
    admin = staff[Role.CLINIC_ADMIN]
    with pytest.raises(ValidationError) as refused:
        services.integration_settings_update(actor=admin, check_in_days="0, 3", integration_window_hours=72)
    assert refused.value.message_dict == {
        "check_in_days": ["Check-in days run from 1 to 90 after the session."]
    }
    with pytest.raises(ValidationError) as too_long:
        services.integration_settings_update(actor=admin, integration_window_hours=1000)
    assert "integration_window_hours" in too_long.value.message_dict
    assert not IntegrationSettings.objects.filter(clinic=admin.clinic, integration_window_hours=1000).exists()
    saved = services.integration_settings_update(actor=admin, check_in_days="7,1", reminder_hour=9)
    assert (saved.check_in_days, saved.reminder_hour) == ("1, 7", 9)
    assert AuditEvent.objects.filter(action="integration.settings_updated").count() == 1
    for actor in (
        staff[Role.PRESCRIBER],
        staff[Role.THERAPIST],
        staff[Role.MONITOR],
        UserFactory(role=Role.CLINIC_ADMIN),
    ):
        if actor.clinic_id == admin.clinic_id:
            with pytest.raises(NotFoundOrForbidden):
                services.integration_settings_update(actor=actor, reminder_hour=11)
    assert IntegrationSettings.objects.get(clinic=admin.clinic).reminder_hour == 9


class RefusingPatientsBackend(locmem.EmailBackend):
    """The mail server accepts staff and refuses the patient's address (a permanent 550)."""

    def send_messages(self, messages: Any) -> int:
        for message in messages:
            if any(to.endswith("@refused.example") for to in message.to):
                raise smtplib.SMTPRecipientsRefused({message.to[0]: (550, b"5.1.1 No such user")})
        return super().send_messages(messages)


def test_a_refused_patient_address_does_not_send_the_staff_email_again(
    staff: dict[str, Any], session: DosingSession, clinic: Any, settings: Any
) -> None:
    settings.EMAIL_BACKEND = "tests.integration.test_services.RefusingPatientsBackend"
    IntegrationSettings.objects.create(clinic=clinic, patient_emails_enabled=True)
    patient = session.booking.patient
    patient.email = "gone@refused.example"
    patient.save()
    check_in = follow_ups(session.booking.pathway)[("check_in", 1)]
    FollowUp.objects.filter(dosing_session=session).exclude(pk=check_in.pk).update(notified_at=timezone.now())
    FollowUp.objects.filter(pk=check_in.pk).update(notify_at=timezone.now() - dt.timedelta(minutes=1))
    mail.outbox.clear()
    assert services.follow_ups_dispatch_due() == 1
    assert services.follow_ups_dispatch_due() == 0
    assert [m.to for m in mail.outbox] == [[staff[Role.THERAPIST].email]]
    check_in.refresh_from_db()
    assert check_in.notified_at is not None
    assert not check_in.patient_notified
    assert check_in.last_error.startswith("Patient email not sent: SMTPRecipientsRefused")
