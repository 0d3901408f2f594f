"""factory_boy factories for every model the tests build."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import factory
from django.utils import timezone

from integration.models import FollowUp
from kaemdr.models import Clinic
from kaemdr.models import Role
from kaemdr.models import User
from pathways.models import Pathway
from pathways.models import PathwayStageChange
from pathways.models import Patient
from pathways.models import Stage
from screening.models import Assessment
from screening.models import AssessmentStatus
from sessions.models import Room
from sessions.models import RoomOpeningHours

TEST_PASSWORD = "correct-horse-battery-staple"


class ClinicFactory(factory.django.DjangoModelFactory[Clinic]):
    class Meta:
        model = Clinic

    name = factory.Sequence(lambda n: f"Clinic {n}")
    slug = factory.Sequence(lambda n: f"clinic-{n}")
    time_zone = "Europe/London"


class UserFactory(factory.django.DjangoModelFactory[User]):
    class Meta:
        model = User

    email = factory.Sequence(lambda n: f"staff{n}@example.test")
    full_name = factory.Faker("name")
    clinic = factory.SubFactory(ClinicFactory)
    role = Role.PRESCRIBER
    password = factory.django.Password(TEST_PASSWORD)


class PatientFactory(factory.django.DjangoModelFactory[Patient]):
    class Meta:
        model = Patient

    clinic = factory.SubFactory(ClinicFactory)
    record_number = factory.Sequence(lambda n: f"MRN-{n:05d}")
    given_name = factory.Faker("first_name")
    family_name = factory.Faker("last_name")
    date_of_birth = dt.date(1985, 5, 17)
    phone = "07700 900123"
    email = factory.Sequence(lambda n: f"patient{n}@example.org")
    emergency_contact_name = "Pat Contact"
    emergency_contact_relationship = "Sibling"
    emergency_contact_phone = "07700 900456"
    emergency_contact_can_escort = True
    registered_by = factory.SubFactory(UserFactory, clinic=factory.SelfAttribute("..clinic"))


class PathwayFactory(factory.django.DjangoModelFactory[Pathway]):
    class Meta:
        model = Pathway
        skip_postgeneration_save = True

    clinic = factory.SubFactory(ClinicFactory)
    patient = factory.SubFactory(PatientFactory, clinic=factory.SelfAttribute("..clinic"))
    stage = Stage.REFERRAL
    stage_changed_at = factory.LazyFunction(timezone.now)
    prescriber = factory.SubFactory(
        UserFactory, clinic=factory.SelfAttribute("..clinic"), role=Role.PRESCRIBER
    )
    therapist = factory.SubFactory(UserFactory, clinic=factory.SelfAttribute("..clinic"), role=Role.THERAPIST)
    opened_by = factory.SelfAttribute("prescriber")

    @factory.post_generation
    def opened(obj, create: bool, extracted: object, **kwargs: object) -> None:
        if create:
            PathwayStageChange.objects.create(
                pathway=obj,
                from_stage="",
                to_stage=Stage.REFERRAL,
                reason="Opened.",
                changed_by=obj.prescriber,
                changed_at=obj.stage_changed_at,
            )


class SignedScreeningFactory(factory.django.DjangoModelFactory[Assessment]):
    """A signed, current, eligible screening: what the gate to preparation and dosing asks for."""

    class Meta:
        model = Assessment

    pathway = factory.SubFactory(PathwayFactory)
    clinic = factory.SelfAttribute("pathway.clinic")
    version = 1
    status = AssessmentStatus.SIGNED
    opened_by = factory.SelfAttribute("pathway.prescriber")
    proposal = "eligible"
    decision = "eligible"
    signed_by = factory.SelfAttribute("pathway.prescriber")
    signed_at = factory.LazyFunction(timezone.now)
    valid_until = factory.LazyFunction(lambda: timezone.now() + dt.timedelta(days=90))
    agent = "ketamine"
    route = "sublingual"
    weight_kg = Decimal("70.0")  # the dose per kg is checked against the clinic's range


class RoomFactory(factory.django.DjangoModelFactory[Room]):
    """A room open every day from 07:00 to 20:00 (clinic time), with all its equipment."""

    class Meta:
        model = Room
        skip_postgeneration_save = True

    clinic = factory.SubFactory(ClinicFactory)
    name = factory.Sequence(lambda n: f"Room {n}")

    @factory.post_generation
    def hours(obj, create: bool, extracted: object, **kwargs: object) -> None:
        if create:
            RoomOpeningHours.objects.bulk_create(
                RoomOpeningHours(room=obj, weekday=day, opens=dt.time(7, 0), closes=dt.time(20, 0))
                for day in range(7)
            )


class FollowUpFactory(factory.django.DjangoModelFactory[FollowUp]):
    """A follow-up on its own (no dosing session), due now: what the dispatcher picks up next."""

    class Meta:
        model = FollowUp

    pathway = factory.SubFactory(PathwayFactory)
    clinic = factory.SelfAttribute("pathway.clinic")
    patient = factory.SelfAttribute("pathway.patient")
    kind = "check_in"
    sequence = factory.Sequence(lambda n: n % 30000 + 1)
    responsible = factory.SelfAttribute("pathway.therapist")
    due_at = factory.LazyFunction(timezone.now)
    notify_at = factory.LazyFunction(lambda: timezone.now() - dt.timedelta(minutes=1))
