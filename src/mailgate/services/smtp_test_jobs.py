"""Background connection tests that deliver a test mail, with progress (DocSpace's model).

A job row records each step; the work runs as a task in the serving process. One job at a
time per account: asking again while one runs returns the running job. A failed job's
``error`` is kept untranslated (:func:`mailgate.i18n.stored_message`): whoever asks for the
job's state reads it in their own language.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from mailgate.config import Settings
from mailgate.delivery.transport import TestMessage
from mailgate.domain import SmtpEndpoint
from mailgate.i18n import N_, stored_message
from mailgate.security.secrets_box import SecretBox
from mailgate.services.providers import (
    endpoint_of,
    get_default_provider,
    reason_of,
    test_endpoint,
    test_sender,
)
from mailgate.store.db import Database
from mailgate.store.models import Provider, SmtpTestJob, utcnow

__all__ = ["JobStep", "SmtpTestRunner", "latest_job"]


class JobStep(StrEnum):
    QUEUED = "queued"
    CONNECTING = "connecting"
    SENDING = "sending"
    COMPLETED = "completed"
    FAILED = "failed"


@dataclass(frozen=True)
class _Plan:
    endpoint: SmtpEndpoint
    message: TestMessage


async def latest_job(*, session: AsyncSession, account_id: int) -> SmtpTestJob | None:
    query = (
        select(SmtpTestJob)
        .where(SmtpTestJob.account_id == account_id)
        .order_by(SmtpTestJob.created_at.desc(), SmtpTestJob.id.desc())
        .limit(1)
    )
    return (await session.execute(query)).scalar_one_or_none()


class SmtpTestRunner:
    """Starts jobs and keeps their tasks alive until they finish (or the app stops)."""

    def __init__(self, database: Database, box: SecretBox, settings: Settings) -> None:
        self.database = database
        self.box = box
        self.settings = settings
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(
        self,
        *,
        session: AsyncSession,
        account_id: int,
        recipient: str,
        fallback: Callable[[], tuple[SmtpEndpoint, str, str | None] | None],
    ) -> SmtpTestJob:
        """Queue a test of the account's default provider (or ``fallback()``: the installation
        defaults as endpoint, sender, sender name) sending to ``recipient``."""
        running = await latest_job(session=session, account_id=account_id)
        if running is not None and not running.completed:
            return running
        provider = await get_default_provider(session=session, account_id=account_id)
        plan = self._plan(provider, recipient, fallback)
        job = SmtpTestJob(
            id=secrets.token_hex(16),
            account_id=account_id,
            status=JobStep.QUEUED.value,
            percents=0,
            completed=plan is None,
            error="" if plan else stored_message(N_("No SMTP settings are configured.")),
        )
        if plan is None:
            job.status = JobStep.FAILED.value
            job.percents = 100
        session.add(job)
        await session.commit()
        if plan is not None:
            task = asyncio.create_task(self._run(job.id, plan), name=f"smtp-test-{job.id}")
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        return job

    def _plan(
        self,
        provider: Provider | None,
        recipient: str,
        fallback: Callable[[], tuple[SmtpEndpoint, str, str | None] | None],
    ) -> _Plan | None:
        if provider is not None:
            endpoint = endpoint_of(provider, self.box)
            sender = test_sender(
                provider.from_email, provider.username, fallback=self.settings.root_email
            )
            sender_name = provider.from_name
        else:
            defaults = fallback()
            if defaults is None:
                return None
            endpoint, sender, sender_name = defaults
            sender = test_sender(sender, fallback=self.settings.root_email)
        message = TestMessage(
            sender=sender,
            recipient=recipient,
            subject="Mailgate SMTP settings test",
            text="This message confirms that the SMTP settings work.\n",
            sender_name=sender_name,
        )
        return _Plan(endpoint=endpoint, message=message)

    async def _step(self, job_id: str, step: JobStep, percents: int, error: str = "") -> None:
        async with self.database.session() as session:
            job = await session.get(SmtpTestJob, job_id)
            if job is None:
                return
            job.status = step.value
            job.percents = percents
            job.error = error
            job.completed = step in (JobStep.COMPLETED, JobStep.FAILED)
            job.updated_at = utcnow()
            await session.commit()

    async def _run(self, job_id: str, plan: _Plan) -> None:
        # Two sessions so the progress is honest: connect and AUTH first, then deliver.
        try:
            await self._step(job_id, JobStep.CONNECTING, 10)
            outcome = await test_endpoint(plan.endpoint, settings=self.settings)
            if outcome.error is None:
                await self._step(job_id, JobStep.SENDING, 50)
                outcome = await test_endpoint(
                    plan.endpoint, settings=self.settings, message=plan.message
                )
            if outcome.error is None:
                await self._step(job_id, JobStep.COMPLETED, 100)
            else:
                await self._step(job_id, JobStep.FAILED, 100, reason_of(outcome.error))
        except Exception:
            await self._step(
                job_id, JobStep.FAILED, 100, stored_message(N_("The test could not be run."))
            )
            raise

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
