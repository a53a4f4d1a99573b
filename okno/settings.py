"""Every ``OKNO_*`` setting, typed and documented.

Settings come from, in order of precedence: keyword arguments, ``OKNO_*`` environment
variables, a TOML file named by ``OKNO_CONFIG`` (keys without the prefix, lower case), and
the defaults below. Nothing is read at import time: ``load_settings()`` builds the object
and ``create_app(settings)`` receives it, so tests construct their own.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from typing import Any

from pydantic import Field, ValidationError, ValidationInfo, field_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)


class SettingsError(Exception):
    """A setting has a bad value; the message names the ``OKNO_*`` key."""


class Settings(BaseSettings):
    """okno configuration; the docstring of each field is its documentation."""

    model_config = SettingsConfigDict(env_prefix="OKNO_", extra="forbid", validate_default=True)

    data_dir: Path = Field(
        default=Path("okno-data"),
        description="Directory for the embedded SQLite database, attachments and the secret key.",
    )
    database_url: str = Field(
        default="",
        description="SQLAlchemy URL. Empty: SQLite file `okno.db` in the data directory. "
        "Production: postgresql+asyncpg://user@host/db.",
    )
    redis_url: str = Field(
        default="",
        description="Redis URL for the event bus between processes. Empty: in-process bus.",
    )
    redis_prefix: str = Field(
        default="okno",
        description="Prefix of the Redis pub/sub channel. Pub/sub ignores the database number, "
        "so installations sharing one Redis server need different Redis databases or prefixes.",
    )
    secret_key: str = Field(
        default="",
        description="Key that signs staff and widget tokens. Empty: generated once and kept in "
        "`secret.key` in the data directory. Several processes must share one.",
    )
    host: str = Field(default="127.0.0.1", description="Address `okno serve` listens on.")
    port: int = Field(default=8000, ge=1, le=65535, description="Port `okno serve` listens on.")
    public_url: str = Field(
        default="",
        description="External base URL (https://okno.bank.example); used in printed links.",
    )
    auto_migrate: bool = Field(
        default=True,
        description="Apply database migrations when the server starts (under a lock).",
    )
    worker_in_process: bool = Field(
        default=True,
        description="Run the job worker inside `okno serve`. Turn off when `okno worker` runs.",
    )
    worker_concurrency: int = Field(default=4, ge=1, le=64, description="Jobs run at once.")
    worker_poll_seconds: float = Field(
        default=0.5, gt=0, description="How often an idle worker looks for due jobs."
    )
    job_lease_seconds: int = Field(
        default=300, ge=5, description="A job not finished in this time is retried elsewhere."
    )
    job_retry_base_seconds: float = Field(
        default=2.0,
        gt=0,
        le=3600,
        description="A failed background job (a messenger send, an antivirus scan, a SIEM "
        "shipment) is first retried after about this many seconds, then after twice as long "
        "each time (±25 % jitter), up to OKNO_JOB_RETRY_MAX_SECONDS. A wait the platform "
        "names itself (Retry-After) is kept instead.",
    )
    job_retry_max_seconds: float = Field(
        default=3600.0,
        gt=0,
        le=7 * 24 * 3600,
        description="The longest wait between two retries of a failed background job (before "
        "jitter); at least OKNO_JOB_RETRY_BASE_SECONDS.",
    )
    access_token_minutes: int = Field(
        default=12 * 60, ge=1, description="Lifetime of a staff access token."
    )
    session_idle_minutes: int = Field(
        default=30,
        ge=1,
        description="A staff browser session ends after this many minutes without a request "
        "(it is also never longer than OKNO_SESSION_MAX_MINUTES).",
    )
    session_max_minutes: int = Field(
        default=12 * 60,
        ge=1,
        description="A staff browser session ends this many minutes after sign-in however "
        "busy it is (absolute lifetime); the operator signs in again.",
    )
    password_min_length: int = Field(
        default=10, ge=8, le=128, description="Shortest password accepted for staff accounts."
    )
    password_min_classes: int = Field(
        default=2,
        ge=1,
        le=3,
        description="Kinds of characters a password must mix (letters, digits, other "
        "symbols). Passwords on the shipped list of common ones, or containing the login, "
        "are always refused.",
    )
    lockout_attempts: int = Field(
        default=5,
        ge=0,
        le=100,
        description="Failed sign-ins in a row that lock an account. 0 turns lockout off.",
    )
    lockout_minutes: int = Field(
        default=15,
        ge=0,
        description="How long a locked account stays locked. 0: until an admin unlocks it.",
    )
    totp_issuer: str = Field(
        default="okno",
        description="Name shown in the authenticator app next to the login (TOTP second "
        "factor).",
    )
    signin_ip_allowlist: str = Field(
        default="",
        description="Comma-separated addresses or networks (CIDR: 10.0.0.0/8) staff may sign "
        "in from, in addition to the list admins keep in okno. Both empty: anywhere. The "
        "client address is the one OKNO_TRUSTED_PROXIES vouch for.",
    )
    signin_per_ip_per_minute: int = Field(
        default=60,
        ge=0,
        description="Sign-in attempts allowed from one address per minute (429 after). "
        "Raise it when a large contact centre signs in through one NAT address. 0: no limit.",
    )
    signin_per_login_per_minute: int = Field(
        default=10,
        ge=0,
        description="Sign-in attempts allowed for one login per minute, whether or not the "
        "login exists (429 after). 0: no limit.",
    )
    widget_sessions_per_ip_per_minute: int = Field(
        default=60,
        ge=0,
        description="New widget sessions one address may open per minute (429 after). 0: no "
        "limit.",
    )
    widget_messages_per_minute: int = Field(
        default=30,
        ge=0,
        description="Messages one widget session may send per minute (429 after). 0: no limit.",
    )
    mobile_sessions_per_ip_per_minute: int = Field(
        default=60,
        ge=0,
        description="New mobile-app sessions (`POST /api/v1/mobile/sessions`) one address may "
        "open per minute (429 after). Mobile networks put many phones behind one address: "
        "raise it if customers of a large operator are refused. 0: no limit.",
    )
    mobile_messages_per_minute: int = Field(
        default=30,
        ge=0,
        description="Messages and files one mobile-app session may send per minute (429 "
        "after). 0: no limit.",
    )
    ldap_url: str = Field(
        default="",
        description="LDAP or Active Directory server for directory sign-in: "
        "`ldap://dc1.bank.local:389` or `ldaps://...`. Empty: directory sign-in is off.",
    )
    ldap_start_tls: bool = Field(
        default=False, description="Upgrade an `ldap://` connection with StartTLS."
    )
    ldap_ca_file: str = Field(
        default="",
        description="PEM file with the CA certificate(s) that signed the directory's "
        "certificate (the bank's internal CA), for `ldaps://` and StartTLS. Empty: the "
        "system's trusted CAs. The certificate and the server name in OKNO_LDAP_URL are "
        "always checked; a directory whose certificate does not pass is refused "
        "(`directory_unavailable`).",
    )
    ldap_bind_dn: str = Field(
        default="",
        description="Service account that looks users up (`cn=okno,ou=services,dc=bank,"
        "dc=local`). Empty: anonymous search.",
    )
    ldap_bind_password: str = Field(
        default="", description="Password of the LDAP service account (never logged)."
    )
    ldap_user_base: str = Field(
        default="", description="Where users are searched (`ou=people,dc=bank,dc=local`)."
    )
    ldap_user_filter: str = Field(
        default="(uid={login})",
        description="Filter that finds the user; `{login}` is the escaped login. Active "
        "Directory: `(sAMAccountName={login})`.",
    )
    ldap_group_base: str = Field(
        default="",
        description="Where groups are searched. Empty: the user's `memberOf` attribute is used.",
    )
    ldap_group_filter: str = Field(
        default="(|(member={dn})(uniqueMember={dn}))",
        description="Filter for the user's groups under OKNO_LDAP_GROUP_BASE; `{dn}` is the "
        "user's DN.",
    )
    ldap_role_groups: dict[str, str] = Field(
        default={},
        description='Group DN → okno role, as JSON: `{"cn=okno-admins,ou=groups,dc=bank,'
        'dc=local": "admin"}`. A directory user in none of these groups cannot sign in; in '
        "several, the strongest role wins. The role is refreshed at every sign-in.",
    )
    ldap_team_groups: dict[str, str] = Field(
        default={},
        description="Group DN → okno team name, as JSON; the team is created if new.",
    )
    ldap_timeout_seconds: float = Field(
        default=5.0, gt=0, le=60, description="How long an LDAP call may take."
    )
    oidc_issuer: str = Field(
        default="",
        description="OpenID Connect provider (Keycloak realm URL: `https://sso.bank.local/"
        "realms/staff`); its `/.well-known/openid-configuration` is read. Empty: off.",
    )
    oidc_client_id: str = Field(default="", description="okno's client id at the provider.")
    oidc_client_secret: str = Field(
        default="",
        description="okno's client secret (confidential client; never logged). Empty: a "
        "public client using PKCE only.",
    )
    oidc_scopes: str = Field(
        default="openid profile email", description="Scopes asked for at sign-in."
    )
    oidc_login_claim: str = Field(
        default="preferred_username", description="ID-token claim used as the okno login."
    )
    oidc_role_claim: str = Field(
        default="roles",
        description="ID-token claim holding the user's roles or groups; a dotted path reaches "
        "inside (Keycloak: `realm_access.roles`).",
    )
    oidc_role_map: dict[str, str] = Field(
        default={},
        description='Claim value → okno role, as JSON: `{"okno-admin": "admin"}`. A user '
        "with none of these values cannot sign in; with several, the strongest role wins.",
    )
    oidc_team_claim: str = Field(
        default="",
        description="ID-token claim naming the user's team (created if new). Empty: no team.",
    )
    oidc_timeout_seconds: float = Field(
        default=5.0, gt=0, le=60, description="How long a call to the provider may take."
    )
    routing_grace_seconds: int = Field(
        default=120,
        ge=0,
        description="An operator away (break, offline, disconnected) this long loses their "
        "dialogs back to the queue, in front of everyone.",
    )
    bot_answer_threshold: float = Field(
        default=0.3,
        ge=0.0,
        le=1.0,
        description="The bot answers when its confidence (the estimated probability that the "
        "message is a question for the knowledge base at all, times how sure it is of the best "
        "article, which can at most halve it) reaches this, else hands the dialog to a person; "
        "`python3 bench/bot_eval.py` shows how it trades answers for hand-offs.",
    )
    reply_suggestions_history_days: int = Field(
        default=90,
        ge=0,
        description="Reply suggestions for operators also offer earlier operator answers to "
        "similar questions from dialogs of this many past days. 0: knowledge base only.",
    )
    reply_suggestions_history_pairs: int = Field(
        default=5000,
        ge=0,
        description="At most this many of the newest question → answer pairs are kept in "
        "memory (per process) for reply suggestions. Rebuilding the index takes about a "
        "second per thousand pairs, in a thread.",
    )
    reply_suggestions_refresh_seconds: int = Field(
        default=300,
        ge=0,
        description="The in-memory index of earlier operator answers is rebuilt when older "
        "than this, so new answers are offered within this time.",
    )
    bot_actions_url: str = Field(
        default="",
        description="Base URL of the bank's self-service gateway: a flow's `action: balance` "
        "step POSTs to `<url>/balance` for a verified customer. Empty: such steps hand the "
        "dialog to a person.",
    )
    bot_actions_token: str = Field(
        default="",
        description="Bearer token okno sends to the self-service gateway (never logged).",
    )
    channel_send_timeout_seconds: float = Field(
        default=10.0,
        gt=0,
        le=120,
        description="How long a call to a messenger's API (a send, a file download) may take "
        "before it counts as failed and is retried.",
    )
    channel_poll_seconds: float = Field(
        default=8.0,
        ge=0,
        le=50,
        description="How long one long-poll for Telegram updates (channels in polling mode) "
        "waits for new messages.",
    )
    bot_actions_timeout_seconds: float = Field(
        default=3.0,
        gt=0,
        le=30,
        description="How long a self-service call may take before the bot apologises and "
        "hands the dialog to a person.",
    )
    verification_url: str = Field(
        default="",
        description="Base URL of the bank's customer-verification service: okno POSTs "
        "`<url>/send-code` (send a one-time code) and `<url>/check` (is this secret word or "
        "code right?). Empty: operators cannot verify customers, so nobody may unmask "
        "personal data.",
    )
    verification_token: str = Field(
        default="",
        description="Bearer token okno sends to the verification service (never logged).",
    )
    verification_timeout_seconds: float = Field(
        default=5.0,
        gt=0,
        le=60,
        description="How long one call to the verification service may take before the "
        "verification counts as failed.",
    )
    verification_minutes: int = Field(
        default=15,
        ge=1,
        le=24 * 60,
        description="How long a dialog stays verified after the customer passed the check.",
    )
    verification_attempts: int = Field(
        default=3, ge=1, le=10, description="Wrong answers allowed before a verification fails."
    )
    click_to_call_url: str = Field(
        default="",
        description="The bank PBX gateway's click-to-call URL: the «Позвонить» button makes "
        "okno POST the customer's id (and the number okno knows) there; the number is never "
        "sent to the operator's browser. Empty: no call button.",
    )
    click_to_call_token: str = Field(
        default="",
        description="Bearer token okno sends to the click-to-call gateway (never logged).",
    )
    widget_session_days: int = Field(
        default=30, ge=1, description="Lifetime of a widget session token (customer side)."
    )
    max_text_chars: int = Field(
        default=4096, ge=1, description="Longest message text accepted, in characters."
    )
    max_attachment_mb: float = Field(
        default=10,
        gt=0,
        description="Largest attachment accepted, in megabytes, for types without a larger "
        "limit of their own in OKNO_ATTACHMENT_TYPE_LIMITS_MB (uploads are bounded by the "
        "largest of all).",
    )
    attachment_type_limits_mb: dict[str, float] = Field(
        default={},
        description="Size limits in megabytes for some attachment types instead of "
        'OKNO_MAX_ATTACHMENT_MB, as JSON: `{"image/*": 5, "video/mp4": 50}` (a type, or a '
        "family such as `image/*`; the type is the one found in the file's content).",
    )
    clamd_address: str = Field(
        default="",
        description="ClamAV daemon (clamd) that scans every attachment: `host:port` (its "
        "TCPSocket) or `unix:/run/clamav/clamd.ctl`. Empty: files are not scanned. Set "
        "clamd's StreamMaxLength at least as large as the largest attachment.",
    )
    clamd_timeout_seconds: float = Field(
        default=30.0,
        gt=0,
        le=600,
        description="How long one scan may take; clamd not answering in time counts as "
        "down: customers' files are held until a retry scans them, staff uploads are refused.",
    )
    autoclose_after_minutes: int = Field(
        default=60,
        ge=0,
        description="Close a dialog whose last message is from staff after this many silent "
        "minutes of the customer. 0 turns it off.",
    )
    event_retention_days: int = Field(
        default=7,
        ge=1,
        description="Realtime events older than this are pruned; clients further behind reload.",
    )
    sqlite_synchronous: str = Field(
        default="NORMAL",
        description="SQLite `synchronous` pragma. NORMAL survives a killed process; FULL also "
        "survives power loss.",
    )
    db_pool_size: int = Field(default=10, ge=1, description="Database connections per process.")
    log_level: str = Field(default="info", description="debug, info, warning or error.")
    log_json: bool = Field(default=True, description="JSON log lines (for a SIEM) or plain text.")
    trusted_proxies: str = Field(
        default="127.0.0.1",
        description="Comma-separated proxy addresses whose X-Forwarded-* headers are trusted.",
    )
    audit_ship_file: str = Field(
        default="",
        description="Append every audit-log entry, as one JSON line, to this file (for a SIEM "
        "agent to collect). Empty: off.",
    )
    audit_syslog: str = Field(
        default="",
        description="Send every audit-log entry to a syslog collector as RFC 5424 (facility "
        "13, log audit): `udp://host:514` or `tcp://host:601` (octet-counted framing). "
        "Empty: off.",
    )
    retention_messages_days: int = Field(
        default=0,
        ge=0,
        description="Message text of dialogs closed longer ago than this is erased (and the "
        "customer's name and contacts once nothing of theirs is left). 0: kept for ever.",
    )
    retention_attachments_days: int = Field(
        default=0,
        ge=0,
        description="Attachment files of dialogs closed longer ago than this are deleted from "
        "disk (the row stays, marked as removed). 0: kept for ever.",
    )
    retention_recordings_days: int = Field(
        default=0,
        ge=0,
        description="Call recordings older than this are deleted. okno stores no recordings "
        "yet; the period applies once it does. 0: kept for ever.",
    )
    retention_audit_days: int = Field(
        default=0,
        ge=0,
        description="Audit-log entries older than this are deleted, but only once every "
        "configured SIEM target (OKNO_AUDIT_SHIP_FILE, OKNO_AUDIT_SYSLOG) has received them; "
        "the chain stays verifiable from a kept checkpoint. 0: kept for ever.",
    )

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        config_file = os.environ.get("OKNO_CONFIG")
        if config_file:
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=config_file))
        return tuple(sources)

    @field_validator("secret_key")
    @classmethod
    def _check_secret(cls, value: str) -> str:
        if value and len(value) < 32:
            raise ValueError("must be at least 32 characters (use a random string)")
        return value

    @field_validator("job_retry_max_seconds")
    @classmethod
    def _check_retry_max(cls, value: float, info: ValidationInfo) -> float:
        base = info.data.get("job_retry_base_seconds")
        if base is not None and value < base:
            raise ValueError(f"must be at least OKNO_JOB_RETRY_BASE_SECONDS ({base:g})")
        return value

    @field_validator("attachment_type_limits_mb")
    @classmethod
    def _check_type_limits(cls, value: dict[str, float]) -> dict[str, float]:
        from okno.conversations.attachments import ALLOWED, FAMILIES

        for name, megabytes in value.items():
            if name not in ALLOWED and name not in FAMILIES:
                known = ", ".join(sorted(ALLOWED) + sorted(FAMILIES))
                raise ValueError(f"unknown type {name!r}; use one of {known}")
            if not megabytes > 0:
                raise ValueError(f"the limit for {name} must be more than 0 MB")
        return value

    @field_validator("clamd_address")
    @classmethod
    def _check_clamd(cls, value: str) -> str:
        if value:
            from okno.conversations.clamd import parse_address

            parse_address(value)
        return value.strip()

    @field_validator("signin_ip_allowlist")
    @classmethod
    def _check_allowlist(cls, value: str) -> str:
        from okno.security.ip_allowlist import parse_networks

        parse_networks(value.split(","))
        return value.strip()

    @field_validator("ldap_ca_file")
    @classmethod
    def _check_ca_file(cls, value: str) -> str:
        value = value.strip()
        if value and not Path(value).is_file():
            raise ValueError(f"no such file: {value}")
        return value

    @field_validator("ldap_role_groups", "oidc_role_map")
    @classmethod
    def _check_role_map(cls, value: dict[str, str]) -> dict[str, str]:
        from okno.security.permissions import INTERACTIVE_ROLES

        for key, role in value.items():
            if role not in INTERACTIVE_ROLES:
                raise ValueError(
                    f"{key!r} maps to unknown role {role!r}; use one of "
                    + ", ".join(INTERACTIVE_ROLES)
                )
        return value

    @field_validator("log_level")
    @classmethod
    def _check_log_level(cls, value: str) -> str:
        if value.lower() not in {"debug", "info", "warning", "error"}:
            raise ValueError("must be debug, info, warning or error")
        return value.lower()

    @field_validator("sqlite_synchronous")
    @classmethod
    def _check_sync(cls, value: str) -> str:
        if value.upper() not in {"NORMAL", "FULL", "EXTRA"}:
            raise ValueError("must be NORMAL, FULL or EXTRA")
        return value.upper()

    @field_validator("audit_syslog")
    @classmethod
    def _check_syslog(cls, value: str) -> str:
        if not value:
            return value
        scheme, _, rest = value.partition("://")
        host, _, port = rest.rpartition(":")
        if scheme not in ("udp", "tcp") or not host or not port.isdigit():
            raise ValueError("use udp://host:514 or tcp://host:601")
        if not 1 <= int(port) <= 65535:
            raise ValueError("the port must be 1–65535")
        return value

    @field_validator("database_url")
    @classmethod
    def _check_db(cls, value: str) -> str:
        if value and not value.startswith(("sqlite+aiosqlite://", "postgresql+asyncpg://")):
            if value.startswith(("postgresql://", "postgres://")):
                return "postgresql+asyncpg://" + value.split("://", 1)[1]
            raise ValueError("use sqlite+aiosqlite:///path or postgresql+asyncpg://user@host/db")
        return value

    @property
    def effective_database_url(self) -> str:
        """The database URL, defaulting to the SQLite file in the data directory."""
        if self.database_url:
            return self.database_url
        return f"sqlite+aiosqlite:///{(self.data_dir / 'okno.db').resolve()}"

    @property
    def is_sqlite(self) -> bool:
        return self.effective_database_url.startswith("sqlite")

    @property
    def max_attachment_bytes(self) -> int:
        return int(self.max_attachment_mb * 1024 * 1024)

    @property
    def attachment_type_limits(self) -> dict[str, int]:
        """OKNO_ATTACHMENT_TYPE_LIMITS_MB in bytes."""
        return {k: int(v * 1024 * 1024) for k, v in self.attachment_type_limits_mb.items()}

    @property
    def largest_attachment_bytes(self) -> int:
        """The most any upload may be: what request bodies and reads are sized by."""
        return max([self.max_attachment_bytes, *self.attachment_type_limits.values()])

    def signing_key(self) -> str:
        """The token-signing key; created in the data directory on first use."""
        if self.secret_key:
            return self.secret_key
        path = self.data_dir / "secret.key"
        if path.exists():
            return path.read_text().strip()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        key = secrets.token_urlsafe(48)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(key)
        os.chmod(tmp, 0o600)
        try:
            os.link(tmp, path)  # atomic: a racing process keeps the first key
        except FileExistsError:
            pass
        tmp.unlink(missing_ok=True)
        return path.read_text().strip()


def load_settings(**overrides: Any) -> Settings:
    """Build settings from the environment; raise SettingsError naming the bad key."""
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            key = "OKNO_" + "_".join(str(p) for p in err["loc"]).upper()
            problems.append(f"{key}: {err['msg']}")
        raise SettingsError("; ".join(problems)) from None
    except (OSError, ValueError) as exc:  # unreadable or malformed TOML file
        raise SettingsError(f"OKNO_CONFIG: {exc}") from None


def settings_markdown() -> str:
    """The documented list of settings, as published in docs/configuration.md."""
    lines = [
        "# Configuration",
        "",
        "okno reads `OKNO_*` environment variables, and an optional TOML file named by",
        "`OKNO_CONFIG` (same names without the prefix, lower case: `port = 8080`).",
        "Environment variables win over the file. `okno settings` prints the values in",
        "effect; this page is generated by `okno settings --markdown`.",
        "",
        "| variable | default | meaning |",
        "| --- | --- | --- |",
    ]
    for name, field in Settings.model_fields.items():
        default = field.default
        shown = f"`{default}`" if default not in ("", None) else "(empty)"
        lines.append(f"| `OKNO_{name.upper()}` | {shown} | {field.description or ''} |")
    return "\n".join(lines) + "\n"
