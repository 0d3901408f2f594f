"""Writes for PDF summaries: asking for one, rendering it (the Celery task's body), and audited
downloads. Pages, the API and the task all come through here."""

from __future__ import annotations

import datetime as dt
import logging
import os
import tempfile
import uuid
from pathlib import Path

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import IntegrityError
from django.db import transaction
from django.http import Http404
from django.utils import timezone

from kaemdr import outbox
from kaemdr.audit import audit_record
from kaemdr.exceptions import NotFoundOrForbidden
from kaemdr.models import User

from . import rules
from . import selectors
from . import summaries
from . import task_names
from .models import Summary
from .models import SummaryKind
from .models import SummaryStatus

logger = logging.getLogger(__name__)


class SummaryAuditAction:
    REQUESTED = "summary.requested"
    READY = "summary.ready"
    FAILED = "summary.failed"
    DOWNLOADED = "summary.downloaded"


def summaries_dir() -> Path:
    """Where summary files live: private, outside any public path."""
    folder = Path(settings.KAEMDR_PRIVATE_DIR) / "summaries"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def summary_path(summary: Summary) -> Path:
    return summaries_dir() / summary.file_name


def _source(actor: User, kind: str, record_public_id: uuid.UUID | str) -> selectors.SummarySource:
    if kind not in SummaryKind.values:
        raise ValidationError({"kind": ValidationError("Choose what to summarise.", code="invalid_choice")})
    try:
        return selectors.source_for(actor, kind, record_public_id)
    except Http404:
        raise NotFoundOrForbidden() from None
    except selectors.NotSummarisable as refusal:
        raise ValidationError(str(refusal), code="not_signed") from None


def _audit(actor: User | None, action: str, summary: Summary, **data: object) -> None:
    audit_record(
        actor=actor,
        action=action,
        target_type="integration.Summary",
        target_public_id=summary.public_id,
        clinic_public_id=summary.pathway.clinic.public_id,
        patient_public_id=summary.pathway.patient.public_id,
        data={"kind": summary.kind, "record": str(summary.record_public_id), **data},
    )


def summary_retry_wait() -> dt.timedelta:
    """How long a summary waits, being made, before its page offers "Try again"."""
    return dt.timedelta(seconds=settings.KAEMDR_SUMMARY_RETRY_AFTER_SECONDS)


def summary_retry_offered(summary: Summary) -> bool:
    """Whether the summary's page offers "Try again" (failed, or pending past the wait)."""
    return rules.summary_retry_offered(
        status=summary.status, pending_since=summary.updated_at, now=timezone.now(), wait=summary_retry_wait()
    )


def summary_request(*, actor: User, kind: str, record_public_id: uuid.UUID | str) -> Summary:
    """Ask for the summary of a record the actor may see.

    The record's current data decides its version: the stored summary of that version is returned
    when there is one (made or being made); otherwise a new one is queued. A failed one is queued
    again, which is the retry.

    The render is an outbox row written in this transaction (`kaemdr.outbox`), so a broker that is
    down delays it and never loses it. Asking again for a summary being made queues its render again
    when it never reached the broker, or when the page offers "Try again" (pending past
    `summary_retry_wait`); otherwise it is on its way, and nothing changes."""
    source = _source(actor, kind, record_public_id)
    version = summaries.version_of(summaries.summary_data(source))
    with transaction.atomic():
        try:
            with transaction.atomic():
                summary, created = Summary.objects.select_for_update().get_or_create(
                    kind=kind,
                    record_public_id=source.record.public_id,
                    version=version,
                    defaults={
                        "clinic_id": source.pathway.clinic_id,
                        "pathway": source.pathway,
                        "requested_by": actor,
                    },
                )
        except IntegrityError:  # two requests at once: the other one made it
            summary, created = (
                Summary.objects.select_for_update().get(
                    kind=kind, record_public_id=source.record.public_id, version=version
                ),
                False,
            )
        file_lost = summary.status == SummaryStatus.READY and not summary_path(summary).exists()
        if created or summary.status == SummaryStatus.FAILED or file_lost:
            summary.status, summary.error, summary.requested_by = SummaryStatus.PENDING, "", actor
            summary.save(update_fields=["status", "error", "requested_by", "updated_at"])
            _audit(actor, SummaryAuditAction.REQUESTED, summary, retry=not created)
            outbox.enqueue(task_names.SUMMARY_RENDER, str(summary.public_id))
        elif summary.status == SummaryStatus.PENDING:
            offered = summary_retry_offered(summary)
            if outbox.enqueue(
                task_names.SUMMARY_RENDER,
                str(summary.public_id),
                republish_after=dt.timedelta(0) if offered else summary_retry_wait(),
            ):
                summary.save(update_fields=["updated_at"])  # the wait for "Try again" starts again
                _audit(actor, SummaryAuditAction.REQUESTED, summary, retry=True, requeued=True)
    return Summary.objects.select_related("pathway__patient", "pathway__clinic").get(pk=summary.pk)


def summary_render(*, summary_public_id: uuid.UUID | str) -> Summary | None:
    """Render a pending summary once; running it again does nothing. The PDF is written to a
    temporary file and moved into place only when whole, so a failure never leaves half a file."""
    with transaction.atomic():
        summary = (
            Summary.objects.select_for_update(of=("self",))
            .select_related("pathway__patient", "pathway__clinic")
            .filter(public_id=summary_public_id)
            .first()
        )
        if summary is None or summary.status != SummaryStatus.PENDING:
            return summary
        temporary: str | None = None
        try:
            source = selectors.source_unscoped(summary.kind, summary.record_public_id)
            data = summaries.summary_data(source)
            if summaries.version_of(data) != summary.version:
                raise selectors.NotSummarisable("The record changed while its summary was queued; ask again.")
            pdf, pages = summaries.render_pdf(data, generated_at=timezone.now())
            file_name = f"{summary.public_id}.pdf"
            folder = summaries_dir()
            handle, temporary = tempfile.mkstemp(dir=folder, prefix=".rendering-", suffix=".pdf")
            with os.fdopen(handle, "wb") as out:
                out.write(pdf)
                out.flush()
                os.fsync(out.fileno())
            os.replace(temporary, folder / file_name)
            temporary = None
        except Exception as error:  # any failure is shown with a retry; the traceback goes to the log
            logger.exception("summary %s failed to render", summary.public_id)
            if temporary is not None and os.path.exists(temporary):
                os.unlink(temporary)
            summary.status, summary.error = SummaryStatus.FAILED, f"{type(error).__name__}: {error}"[:300]
            summary.save(update_fields=["status", "error", "updated_at"])
            _audit(None, SummaryAuditAction.FAILED, summary)
            return summary
        summary.status, summary.file_name, summary.page_count = SummaryStatus.READY, file_name, pages
        summary.byte_size, summary.ready_at = len(pdf), timezone.now()
        summary.save()
        _audit(None, SummaryAuditAction.READY, summary, pages=pages)
    return summary


def summary_for_download(*, actor: User, summary: Summary) -> Path:
    """The file of a ready summary, after the same access check as its record; audited."""
    _source(actor, summary.kind, summary.record_public_id)
    if summary.status != SummaryStatus.READY:
        raise ValidationError("This summary is not ready.", code="summary_not_ready")
    path = summary_path(summary)
    if not path.exists():
        raise ValidationError("The summary file is missing; ask for it again.", code="summary_file_missing")
    _audit(actor, SummaryAuditAction.DOWNLOADED, summary)
    return path
