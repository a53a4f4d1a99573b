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

from pydantic import Field, ValidationError, field_validator
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
    access_token_minutes: int = Field(
        default=12 * 60, ge=1, description="Lifetime of a staff access token."
    )
    session_idle_minutes: int = Field(
        default=30,
        ge=1,
        description="A staff browser session ends after this many minutes without a request "
        "(it is also never longer than OKNO_ACCESS_TOKEN_MINUTES).",
    )
    routing_grace_seconds: int = Field(
        default=120,
        ge=0,
        description="An operator away (break, offline, disconnected) this long loses their "
        "dialogs back to the queue, in front of everyone.",
    )
    bot_answer_threshold: float = Field(
        default=0.25,
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
    widget_session_days: int = Field(
        default=30, ge=1, description="Lifetime of a widget session token (customer side)."
    )
    max_text_chars: int = Field(
        default=4096, ge=1, description="Longest message text accepted, in characters."
    )
    max_attachment_mb: float = Field(
        default=10, gt=0, description="Largest attachment accepted, in megabytes."
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
