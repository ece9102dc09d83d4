"""Settings: every ``MAILGATE_*`` environment variable, read once and passed down."""

from __future__ import annotations

import ipaddress
import os
import secrets
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from mailgate.validation import check_hostname

__all__ = ["Settings"]

SECRET_KEY_FILE = "secret.key"  # noqa: S105 - a file name, not a secret


class Settings(BaseSettings):
    """Gateway configuration. Build it once (``Settings()``) in ``main``/``create_app``."""

    model_config = SettingsConfigDict(env_prefix="MAILGATE_", extra="ignore")

    data_dir: Path = Field(default=Path("data"), description="Where the SQLite file and keys live.")
    database_url: str = Field(
        default="",
        description="SQLAlchemy async URL; empty means sqlite+aiosqlite:///<data_dir>/mailgate.db.",
    )
    http_host: str = "127.0.0.1"
    http_port: int = Field(default=8025, ge=1, le=65535)
    processes: int = Field(
        default=0,
        ge=0,
        description="`serve` processes, each answering the API and delivering what it accepted; "
        "0: one per CPU on PostgreSQL, one on SQLite (whose single writer they would share). "
        "Per-key rate limits are counted per process unless MAILGATE_REDIS_URL is set.",
    )
    secret_key: SecretStr | None = Field(
        default=None,
        description="Fernet key material for secrets at rest; comma-separated to rotate "
        "(first encrypts, all decrypt). Generated into <data_dir>/secret.key when unset.",
    )
    redis_url: str | None = Field(default=None, description="Shares rate limits across nodes.")
    api_rate_limit: str = Field(default="600/minute", description="Per API key, `limits` syntax.")
    api_key_cache_seconds: float = Field(
        default=5.0,
        ge=0,
        description="How long a verified API key is trusted without a lookup (a revoked key "
        "stops working within this time; 0: look up every request).",
    )
    max_request_bytes: int = Field(
        default=70 * 1024 * 1024, gt=0, description="Largest HTTP body accepted (413 above)."
    )
    root_email: str = Field(
        default="postmaster@example.com", description="Owner address of the root account."
    )
    log_level: str = "info"
    access_log: bool = Field(
        default=False,
        description="A log line per HTTP request (uvicorn's access log). Off by default, as in "
        "gunicorn: every accepted message is an event already, and at a thousand requests a "
        "second the lines took a tenth of the API's CPU.",
    )
    environment: Literal["development", "production"] = "development"

    # Upstream SMTP connections (connection tests now, delivery later).
    smtp_timeout: float = Field(default=15.0, gt=0, description="Seconds per SMTP step.")
    smtp_ca_bundle: Path | None = Field(default=None, description="Extra CA bundle (PEM) to trust.")
    smtp_helo_name: str | None = Field(default=None, description="EHLO name; default: host name.")

    # Accepting and delivering mail.
    message_max_bytes: int = Field(
        default=50 * 1024 * 1024, gt=0, description="Largest message, as MIME (SMTP2GO: 50 MB)."
    )
    message_id_domain: str | None = Field(
        default=None, description="Domain of generated Message-IDs; default: the sender's."
    )
    run_workers: bool = Field(default=True, description="`serve` delivers in-process too.")
    delivery_process: bool | None = Field(
        default=None,
        description="`serve` delivers from a process of its own (a `mailgate worker` it starts "
        "and watches) while its API and relay processes only accept; unset: so on SQLite "
        "with two or more CPUs, where it puts the second CPU to work.",
    )
    worker_concurrency: int = Field(default=200, ge=1, description="Messages in flight per worker.")
    queue_batch_size: int = Field(default=200, ge=1, description="Messages claimed at once.")
    queue_lease_seconds: float = Field(
        default=300.0, gt=0, description="A claim not finished by then is claimed again."
    )
    queue_poll_seconds: float = Field(default=1.0, gt=0, description="Idle queue re-check.")
    retry_schedule: list[int] = Field(
        default=[60, 120, 300, 600, 1200, 2400, 3600],
        description="Seconds to wait after the 1st, 2nd, ... soft failure (last one repeats).",
    )
    message_expiry_hours: float = Field(
        default=72.0, gt=0, description="Deferred mail still undelivered then has failed."
    )
    circuit_failure_threshold: int = Field(
        default=5, ge=1, description="Consecutive connection failures that trip a provider."
    )
    circuit_cooldown_seconds: float = Field(
        default=60.0, gt=0, description="How long a tripped provider rests before a probe."
    )
    pool_max_connections: int = Field(default=10, ge=1, description="Per provider.")
    pool_max_messages_per_connection: int = Field(default=100, ge=1)
    pool_idle_seconds: float = Field(default=30.0, gt=0)

    # Stats (services/stats.py): hourly rollups of events, read with the events not yet in them.
    stats_rollup_seconds: float = Field(
        default=30.0,
        ge=0,
        description="How often a node rolls new events up into hourly stats; 0: never (stats "
        "stay exact, read from the events themselves, only slower).",
    )
    stats_cycle_max: int = Field(
        default=0,
        ge=0,
        description="SMTP2GO /stats/email_cycle: emails allowed per calendar month; 0: no "
        "allowance (answered as 2147483647).",
    )

    # The SMTP relay listener (smtpd/): applications hand mail over SMTP.
    smtp_host: str = Field(default="127.0.0.1", description="Relay bind address.")
    smtp_port: int = Field(
        default=2525, ge=0, le=65535, description="Relay port, with STARTTLS; 0: no listener."
    )
    smtp_tls_port: int | None = Field(
        default=None, ge=1, le=65535, description="Implicit-TLS relay port (465), if any."
    )
    smtp_tls_cert: Path | None = Field(
        default=None,
        description="Relay certificate chain (PEM); with smtp_tls_key. Unset: a self-signed "
        "pair generated once into <data_dir>/smtpd-tls.pem.",
    )
    smtp_tls_key: Path | None = Field(default=None, description="Relay private key (PEM).")
    smtp_hostname: str | None = Field(
        default=None, description="Name in the relay's greeting; default: smtp_helo_name or host."
    )
    smtp_allow_plaintext_auth: bool = Field(
        default=False, description="Allow AUTH before STARTTLS (only on trusted networks)."
    )
    smtp_max_recipients: int = Field(default=500, ge=1, description="RCPTs per message.")
    smtp_max_messages_per_connection: int = Field(default=10_000, ge=1)
    smtp_max_connections: int = Field(default=1000, ge=1, description="Per process.")
    smtp_max_connections_per_ip: int = Field(default=100, ge=1, description="Per process.")
    smtp_idle_timeout: float = Field(default=300.0, gt=0, description="Seconds per command.")
    smtp_auth_cache_seconds: float = Field(
        default=60.0,
        ge=0,
        description="How long a successful SMTP login (or an IP-auth lookup) is trusted without "
        "checking again (argon2 costs ~0.2 s of CPU). A disabled user or a changed password "
        "takes effect within this time.",
    )
    bounce_domain: str | None = Field(
        default=None,
        description="Outgoing mail carries a VERP return path bounces+<token>@<this domain>; "
        "the relay accepts DSNs and complaint reports for it without AUTH. Unset: no VERP.",
    )

    # Activity search and the archive (suppressions, activity, archive).
    activity_rate_limit: str = Field(
        default="60/minute",
        description="Per API key on /v3/activity/search (SMTP2GO's limit), on top of "
        "api_rate_limit; `limits` syntax.",
    )
    archive_retention_days: int = Field(
        default=30,
        ge=0,
        description="Days a finished message's MIME is kept (archive, raw download); then it "
        "is purged and its metadata and events kept. 0: keep forever.",
    )
    archive_purge_interval_seconds: float = Field(
        default=3600.0, gt=0, description="How often the delivering process purges old bodies."
    )
    archive_purge_batch_size: int = Field(
        default=500, ge=1, description="Bodies removed per transaction by the purge."
    )

    # Webhooks (webhooks/): an outbox of signed POSTs, retried with backoff.
    webhook_allow_private: bool = Field(
        default=False,
        description="Allow webhook URLs on private, loopback and link-local addresses.",
    )
    webhook_timeout_seconds: float = Field(default=10.0, gt=0, description="Per POST.")
    webhook_retry_schedule: list[float] = Field(
        default=[5, 30, 120, 300, 900, 1800, 3600, 7200, 14400, 21600],
        description="Seconds to wait after the 1st, 2nd, ... failed POST (last one repeats).",
    )
    webhook_retry_hours: float = Field(
        default=24.0,
        gt=0,
        description="A delivery still failing this long after its event is given up (a manual "
        "replay sends it again).",
    )
    webhook_disable_after_hours: float = Field(
        default=48.0,
        gt=0,
        description="A webhook failing this long without a success, and at least "
        "webhook_disable_after_failures times in a row, is disabled, with the reason.",
    )
    webhook_disable_after_failures: int = Field(
        default=20, ge=1, description="See webhook_disable_after_hours."
    )
    webhook_secret_overlap_hours: float = Field(
        default=24.0, ge=0, description="How long the previous secret still signs after rotation."
    )
    webhook_concurrency: int = Field(default=50, ge=1, description="POSTs in flight per process.")
    webhook_poll_seconds: float = Field(default=1.0, gt=0, description="Outbox re-check.")
    webhook_gap_hold_seconds: float = Field(
        default=60.0,
        ge=0,
        description="How long an event id not committed yet (PostgreSQL commits ids out of "
        "order) is waited for before the fan-out gives up on it.",
    )

    # Tracking and unsubscribe links (api/public): where they point, whom to believe.
    public_url: str | None = Field(
        default=None,
        description="Base URL of the open/click/unsubscribe links of mail whose provider has "
        "no tracking_domain (https://mail.example.com); default http://<http_host>:<http_port>.",
    )
    trusted_proxies: str = Field(
        default="",
        description="Comma-separated addresses or networks of reverse proxies whose "
        "X-Forwarded-For is believed for the IP of opens and clicks; empty: none is.",
    )

    # DocSpace "reset to defaults" returns these installation settings.
    docspace_default_host: str = ""
    docspace_default_port: int = Field(default=25, ge=1, le=65535)
    docspace_default_sender_address: str = ""
    docspace_default_sender_display_name: str = "Mailgate"
    docspace_default_enable_ssl: bool = False
    docspace_default_enable_auth: bool = False
    docspace_default_username: str = ""
    docspace_default_password: SecretStr | None = None

    @property
    def effective_processes(self) -> int:
        if self.processes:
            return self.processes
        on_sqlite = self.effective_database_url.startswith("sqlite")
        return 1 if on_sqlite else os.cpu_count() or 1

    @property
    def effective_delivery_process(self) -> bool:
        if not self.run_workers:
            return False
        if self.delivery_process is not None:
            return self.delivery_process
        on_sqlite = self.effective_database_url.startswith("sqlite")
        return on_sqlite and (os.cpu_count() or 1) >= 2

    @field_validator("data_dir")
    @classmethod
    def _absolute(cls, value: Path) -> Path:
        return value.expanduser().resolve()

    @field_validator("bounce_domain")
    @classmethod
    def _domain(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        name = check_hostname(value)
        if "." not in name or name.replace(".", "").isdigit() or ":" in name:
            raise ValueError("bounce_domain must be a DNS domain name")
        return name

    @model_validator(mode="after")
    def _tls_pair(self) -> Settings:
        if (self.smtp_tls_cert is None) != (self.smtp_tls_key is None):
            raise ValueError("set MAILGATE_SMTP_TLS_CERT and MAILGATE_SMTP_TLS_KEY together")
        return self

    @field_validator("public_url")
    @classmethod
    def _public_url(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        parts = urlsplit(value.strip())
        if parts.scheme not in ("http", "https") or not parts.netloc or parts.query:
            raise ValueError("public_url must be an http(s) URL such as https://mail.example.com")
        return value.strip().rstrip("/")

    @field_validator("trusted_proxies")
    @classmethod
    def _proxies(cls, value: str) -> str:
        for part in filter(None, (p.strip() for p in value.split(","))):
            ipaddress.ip_network(part, strict=False)  # ValueError names the bad entry
        return value

    @property
    def effective_public_url(self) -> str:
        return self.public_url or f"http://{self.http_host}:{self.http_port}"

    @property
    def trusted_proxy_networks(self) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
        parts = (p.strip() for p in self.trusted_proxies.split(","))
        return tuple(ipaddress.ip_network(p, strict=False) for p in parts if p)

    @property
    def effective_database_url(self) -> str:
        return self.database_url or f"sqlite+aiosqlite:///{self.data_dir / 'mailgate.db'}"

    def secret_keys(self) -> list[str]:
        """The secret-key material, newest first, creating the key file once if needed."""
        if self.secret_key is not None:
            raw = self.secret_key.get_secret_value()
        else:
            raw = self._key_file()
        keys = [part.strip() for part in raw.split(",") if part.strip()]
        if not keys:
            raise ValueError("MAILGATE_SECRET_KEY is empty")
        return keys

    def _key_file(self) -> str:
        path = self.data_dir / SECRET_KEY_FILE
        if path.exists():
            return path.read_text().strip()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        key = secrets.token_urlsafe(32)
        # O_EXCL: two processes starting at once must not write two different keys.
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            return path.read_text().strip()
        with os.fdopen(fd, "w") as handle:
            handle.write(key + "\n")
        return key
