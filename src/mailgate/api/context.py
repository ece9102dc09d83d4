"""Process-wide objects every request needs, built once in the app's lifespan."""

from __future__ import annotations

from dataclasses import dataclass

from mailgate.config import Settings
from mailgate.security.rate_limit import KeyRateLimiter
from mailgate.security.secrets_box import SecretBox
from mailgate.services.accounts import PrincipalCache
from mailgate.services.messages import AcceptBatcher
from mailgate.services.smtp_test_jobs import SmtpTestRunner
from mailgate.store.db import Database

__all__ = ["AppContext"]


@dataclass
class AppContext:
    settings: Settings
    database: Database
    box: SecretBox
    rate_limiter: KeyRateLimiter
    smtp_tests: SmtpTestRunner
    accepter: AcceptBatcher
    principals: PrincipalCache
