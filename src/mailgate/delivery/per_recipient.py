"""Sending a message as one SMTP transaction per recipient, each with its own copy.

Used only for mail that is tracked or carries List-Unsubscribe (see
:mod:`mailgate.delivery.personalize`); everything else goes to all its recipients in one
transaction, as before.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from mailgate.delivery.smtp_pool import RecipientResult, SendResult, SmtpPool
from mailgate.domain import Outcome

__all__ = ["send_per_recipient"]


async def send_per_recipient(
    pool: SmtpPool,
    *,
    mail_from: str,
    recipients: Sequence[str],
    smtputf8: bool,
    copy_for: Callable[[str], bytes],
) -> SendResult:
    """One transaction per recipient, in order, through the pool (its connections are reused).

    When the provider fails before anything of a copy was sent (no connection, TLS, AUTH),
    the recipients not yet tried get the same soft result and are not tried: the whole
    result is ``unsent`` (the worker fails over) only if nothing was sent at all."""
    results: list[RecipientResult] = []
    for index, recipient in enumerate(recipients):
        sent = await pool.send(
            mail_from=mail_from,
            recipients=[recipient],
            data=copy_for(recipient),
            smtputf8=smtputf8,
        )
        results.extend(sent.results)
        if sent.unsent:
            failure = sent.results[0]
            results.extend(
                RecipientResult(other, Outcome.SOFT, failure.code, failure.reply)
                for other in recipients[index + 1 :]
            )
            return SendResult(tuple(results), unsent=index == 0)
    return SendResult(tuple(results))
