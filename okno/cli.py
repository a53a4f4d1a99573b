"""The ``okno`` command: serve, worker, migrate, users, channels, demo.

Every command exits non-zero with a one-line message on bad input; ``--json`` prints data
for scripts.
"""

from __future__ import annotations

import asyncio
import json
import signal
import sys
from collections.abc import Awaitable, Callable
from contextlib import suppress
from pathlib import Path
from typing import Any, TypeVar

import click
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession

from okno.errors import OknoError
from okno.settings import Settings, SettingsError, load_settings

T = TypeVar("T")

DEMO_STAFF = [
    # login, password, role, team, name
    ("operator", "operator123", "operator", "Поддержка", "Анна Смирнова"),
    ("operator2", "operator123", "operator", "Поддержка", "Игорь Петров"),
    ("supervisor", "supervisor123", "supervisor", None, "Ольга Кузнецова"),
    ("admin", "admin12345", "admin", None, "Администратор"),
]
DEMO_WIDGET_KEY = "demo"


def _settings(**overrides: Any) -> Settings:
    try:
        return load_settings(**{k: v for k, v in overrides.items() if v is not None})
    except SettingsError as exc:
        raise click.ClickException(f"bad setting: {exc}") from None


def _fail(exc: Exception) -> click.ClickException:
    if isinstance(exc, OknoError):
        # one line (scripts read the first "Error:" line): the message, then each problem
        problems = []
        for item in exc.fields.get("errors") or []:
            where = ", ".join(
                f"{k} {item[k]}" for k in ("position", "line", "id") if item.get(k) is not None
            )
            problems.append(f"{where}: {item.get('problem')}")
        return click.ClickException("; ".join([exc.message, *problems[:10]]))
    return click.ClickException(f"{type(exc).__name__}: {exc}")


async def _in_transaction(settings: Settings, fn: Callable[[AsyncSession], Awaitable[T]]) -> T:
    from okno.db import migrate
    from okno.db.session import Database

    await migrate.upgrade(settings)
    db = Database(settings)
    try:
        async with db.transaction() as session:
            return await fn(session)
    finally:
        await db.dispose()


def _run(coro: Awaitable[T]) -> T:
    try:
        return asyncio.run(coro)  # type: ignore[arg-type]
    except OknoError as exc:
        raise _fail(exc) from None
    except SQLAlchemyError as exc:
        detail = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
        raise click.ClickException(f"database error: {detail}") from None
    except OSError as exc:
        where = f" ({exc.filename})" if exc.filename else ""
        raise click.ClickException(
            f"cannot open the database or data directory{where}: {exc.strerror or exc}"
        ) from None


@click.group()
@click.version_option(package_name="okno")
def main() -> None:
    """okno: one window for every customer conversation.

    Settings come from OKNO_* environment variables (see docs/configuration.md).
    """


@main.command()
@click.option("--host", default=None, help="Address to listen on (OKNO_HOST).")
@click.option("--port", type=int, default=None, help="Port to listen on (OKNO_PORT).")
@click.option(
    "--workers",
    type=click.IntRange(1, 64),
    default=1,
    help="Server processes sharing the port (one per core). More than one needs "
    "OKNO_REDIS_URL, so that events reach sockets held by the other processes.",
)
def serve(host: str | None, port: int | None, workers: int) -> None:
    """Run the web server (API, WebSockets, pages; and the job worker unless disabled)."""
    settings = _settings(host=host, port=port)
    if workers > 1 and not settings.redis_url:
        raise click.ClickException(
            "--workers above 1 needs OKNO_REDIS_URL: without it a message received by one "
            "process would not reach operators connected to another"
        )
    _serve(settings, workers=workers)


def _serve(settings: Settings, workers: int = 1) -> None:
    import os

    import uvicorn

    from okno.app import create_app

    options: dict[str, Any] = {
        "host": settings.host,
        "port": settings.port,
        "access_log": False,
        "log_level": "warning",
        "proxy_headers": True,
        "forwarded_allow_ips": settings.trusted_proxies,
        "ws_max_size": 1 << 20,
    }
    if workers > 1:
        if settings.auto_migrate:  # once here, not racing in every worker
            from okno.db import migrate as m

            _run(m.upgrade(settings))
        os.environ["OKNO_AUTO_MIGRATE"] = "false"
        os.environ["OKNO_HOST"] = settings.host
        os.environ["OKNO_PORT"] = str(settings.port)
        settings.signing_key()  # create the shared key file before the workers race for it
        uvicorn.run("okno.app:app_from_env", factory=True, workers=workers, **options)
        return
    uvicorn.run(create_app(settings), **options)


@main.command("settings")
@click.option("--markdown", is_flag=True, help="Print the documented list (docs/configuration.md).")
@click.option("--json", "as_json", is_flag=True, help="Print the values in effect as JSON.")
def settings_cmd(markdown: bool, as_json: bool) -> None:
    """Show every OKNO_* setting: its meaning, or the values in effect (secrets hidden)."""
    from okno.settings import settings_markdown

    if markdown:
        click.echo(settings_markdown(), nl=False)
        return
    current = _settings()
    values = current.model_dump(mode="json")
    for secret in ("secret_key",):
        if values.get(secret):
            values[secret] = "***"
    if as_json:
        click.echo(json.dumps(values, ensure_ascii=False))
    else:
        for key, value in values.items():
            click.echo(f"OKNO_{key.upper()}={value}")


@main.command()
def worker() -> None:
    """Run a job worker (several may run; on PostgreSQL they share the queue safely)."""
    settings = _settings()

    async def run() -> None:
        from okno.bus.factory import make_bus
        from okno.db import migrate
        from okno.db.session import Database
        from okno.jobs.registry import default_registry
        from okno.jobs.worker import Worker
        from okno.observability import configure_logging

        configure_logging(settings)
        if settings.auto_migrate:
            await migrate.upgrade(settings)
        db = Database(settings)
        bus = make_bus(settings)
        await bus.start()
        db.publish = bus.publish
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            with suppress(NotImplementedError):
                loop.add_signal_handler(sig, stop.set)
        try:
            await Worker(db, settings, default_registry()).run_forever(stop)
        finally:
            await bus.stop()
            await db.dispose()

    _run(run())


@main.command()
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def migrate(as_json: bool) -> None:
    """Create or upgrade the database schema (safe to run from several hosts at once)."""
    from okno.db import migrate as m

    settings = _settings()
    _run(m.upgrade(settings))
    revision = _run(m.current_revision(settings))
    if as_json:
        click.echo(json.dumps({"revision": revision}))
    else:
        click.echo(f"database is at revision {revision}")


@main.group()
def users() -> None:
    """Manage staff accounts."""


@users.command("create")
@click.option("--login", required=True)
@click.option(
    "--password",
    required=True,
    help="The password policy applies (OKNO_PASSWORD_MIN_LENGTH, 10 by default; mixed "
    "characters; not a common password; not containing the login).",
)
@click.option(
    "--role",
    required=True,
    type=click.Choice(
        ["operator", "senior_operator", "supervisor", "admin", "security_officer", "auditor"]
    ),
    help="What the account may do (docs/security.md); integrations get API tokens instead.",
)
@click.option("--team", default=None, help="Team name; created if new.")
@click.option("--name", "display_name", default=None, help="Name shown to customers.")
@click.option("--capacity", type=click.IntRange(1, 100), default=5, help="Dialogs at once.")
@click.option(
    "--skills",
    "skills_spec",
    default="",
    help="Skills with levels 1-5 for routing, e.g. cards:3,credits (no level means 1).",
)
@click.option("--json", "as_json", is_flag=True)
def users_create(
    login: str,
    password: str,
    role: str,
    team: str | None,
    display_name: str | None,
    capacity: int,
    skills_spec: str,
    as_json: bool,
) -> None:
    """Create a staff user."""
    from okno.operators import service, skills

    try:
        parsed_skills = skills.parse(skills_spec)
    except skills.SkillsError as exc:
        raise click.BadParameter(str(exc), param_hint="'--skills'") from None

    settings = _settings()

    async def fn(session: AsyncSession) -> dict[str, Any]:
        user = await service.create_user(
            session,
            login=login,
            password=password,
            role=role,
            team=team,
            display_name=display_name,
            capacity=capacity,
            skills=parsed_skills,
            min_length=settings.password_min_length,
            min_classes=settings.password_min_classes,
        )
        return {
            "id": user.id,
            "login": user.login,
            "role": user.role,
            "team_id": user.team_id,
            "skills": dict(user.skills or {}),
        }

    result = _run(_in_transaction(settings, fn))
    click.echo(json.dumps(result) if as_json else f"created {role} {login} (id {result['id']})")


@users.command("unlock")
@click.argument("login")
@click.option("--json", "as_json", is_flag=True)
def users_unlock(login: str, as_json: bool) -> None:
    """Lift an account's sign-in lockout and reset its failure count, from the server: the
    way back in for a sole admin locked with OKNO_LOCKOUT_MINUTES=0. Recorded in the audit
    log as auth.unlocked by system."""
    from sqlalchemy import select

    from okno.errors import NotFound
    from okno.operators import signin
    from okno.operators.auth_models import SignInState
    from okno.operators.models import User
    from okno.security import audit

    settings = _settings()

    async def fn(session: AsyncSession) -> dict[str, Any]:
        user = await session.scalar(select(User).where(User.login == login))
        if user is None:
            raise NotFound(f"no account with the login {login!r}", code="user_not_found")
        before = await session.get(SignInState, user.id)
        was_locked, failures = signin.is_locked(before), before.failed_attempts if before else 0
        await signin.unlock(session, user_id=user.id)
        await audit.record(
            session,
            action=signin.ACCOUNT_UNLOCKED,
            actor=audit.SYSTEM,
            object_type="user",
            object_id=user.id,
            details={"by": "cli"},
        )
        return {
            "id": user.id,
            "login": user.login,
            "was_locked": was_locked,
            "failed_attempts_before": failures,
        }

    result = _run(_in_transaction(settings, fn))
    if as_json:
        click.echo(json.dumps(result))
    elif result["was_locked"]:
        click.echo(f"unlocked {result['login']} (id {result['id']}); it may sign in again")
    else:
        click.echo(f"{result['login']} was not locked; its failure count is back to 0")


@main.group()
def tokens() -> None:
    """Manage API tokens for integrations (CRM, core banking, mobile back-ends)."""


def _token_dict(row: Any) -> dict[str, Any]:
    from okno.operators import api_tokens

    def when(value: Any) -> str | None:
        return value.isoformat() if value is not None else None

    return {
        "id": row.id,
        "name": row.name,
        "prefix": row.prefix,
        "scopes": list(row.scopes or []),
        "user_id": row.user_id,
        "created_at": when(row.created_at),
        "expires_at": when(row.expires_at),
        "last_used_at": when(row.last_used_at),
        "revoked_at": when(row.revoked_at),
        "status": api_tokens.status_of(row),
        "ip_allowlist": list(row.ip_allowlist or []),
    }


@tokens.command("create")
@click.option("--name", required=True, help="Who uses it, e.g. CRM.")
@click.option(
    "--scope",
    "scope_spec",
    required=True,
    help="Comma-separated permissions, e.g. conversations.read_team,customers.read.",
)
@click.option("--expires-days", type=click.IntRange(1, 3650), default=None, help="Default: never.")
@click.option(
    "--allow",
    "allow_spec",
    multiple=True,
    help="Addresses or networks the token may be used from, comma-separated or repeated "
    "(10.20.0.0/16,10.20.30.40); calls from elsewhere get 403 ip_not_allowed. Default: "
    "anywhere.",
)
@click.option("--json", "as_json", is_flag=True)
def tokens_create(
    name: str, scope_spec: str, expires_days: int | None, allow_spec: tuple[str, ...], as_json: bool
) -> None:
    """Create an API token; its secret is printed once (keep it, it cannot be shown again)."""
    from okno.operators import api_tokens
    from okno.security import ip_allowlist, permissions

    try:
        allow = ip_allowlist.normalise(part for spec in allow_spec for part in spec.split(","))
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="'--allow'") from None

    scopes = [s.strip() for s in scope_spec.split(",") if s.strip()]
    unknown = [s for s in scopes if s not in permissions.TOKEN_SCOPES]
    if not scopes or unknown:
        raise click.BadParameter(
            (f"{unknown[0]!r} is not a scope an API token may hold; " if unknown else "")
            + "choose from "
            + ", ".join(sorted(permissions.TOKEN_SCOPES)),
            param_hint="'--scope'",
        )
    settings = _settings()

    async def fn(session: AsyncSession) -> dict[str, Any]:
        row, secret = await api_tokens.create_token(
            session,
            name=name,
            scopes=scopes,
            created_by=None,
            expires_days=expires_days,
            ip_allowlist=allow,
        )
        return {**_token_dict(row), "token": secret}

    result = _run(_in_transaction(settings, fn))
    if as_json:
        click.echo(json.dumps(result))
    else:
        click.echo(f"created API token {name!r} (id {result['id']}); its secret, shown once:")
        click.echo(result["token"])


@tokens.command("list")
@click.option("--json", "as_json", is_flag=True)
def tokens_list(as_json: bool) -> None:
    """Every API token with its scopes and status (never the secrets)."""
    from okno.operators import api_tokens

    settings = _settings()

    async def fn(session: AsyncSession) -> list[dict[str, Any]]:
        return [_token_dict(r) for r in await api_tokens.list_tokens(session)]

    rows = _run(_in_transaction(settings, fn))
    if as_json:
        click.echo(json.dumps({"tokens": rows}))
        return
    for r in rows:
        click.echo(
            f"{r['id']}\t{r['name']}\t{r['prefix']}…\t{r['status']}\t{','.join(r['scopes'])}"
        )


@tokens.command("revoke")
@click.argument("token_id", type=int)
@click.option("--json", "as_json", is_flag=True)
def tokens_revoke(token_id: int, as_json: bool) -> None:
    """Revoke an API token at once."""
    from okno.operators import api_tokens

    settings = _settings()

    async def fn(session: AsyncSession) -> dict[str, Any]:
        return _token_dict(await api_tokens.revoke_token(session, token_id=token_id))

    result = _run(_in_transaction(settings, fn))
    click.echo(json.dumps(result) if as_json else f"revoked API token {result['name']!r}")


@main.group()
def channels() -> None:
    """Manage channels (entry points customers write through)."""


class _AddGroup(click.Group):
    """``okno channels add KIND``: the widget, and one command per messenger kind with the
    options its adapter declares (``--bot-token``, ``--webhook-secret``, ...)."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        from okno.channels import kinds

        return ["widget", *kinds.available()]

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        found = super().get_command(ctx, name)
        if found is not None:
            return found
        from okno.channels import kinds

        if name not in kinds.available():
            return None
        return _messenger_add_command(name)


def _messenger_add_command(kind: str) -> click.Command:
    from okno.channels import kinds

    adapter = kinds.adapter_for(kind)
    fields = kinds.fields_of(adapter)

    def run(name: str | None, bot: bool | None, as_json: bool, **values: Any) -> None:
        from okno.channels import service

        settings = _settings()
        given: dict[str, Any] = {k: v for k, v in values.items() if v is not None}
        if bot is not None:
            given["bot"] = bot

        async def fn(session: AsyncSession) -> dict[str, Any]:
            channel = await service.add_messenger(
                session, kind=kind, values=given, signing_key=settings.signing_key(), name=name
            )
            return {
                "id": channel.id,
                "kind": kind,
                "name": channel.name,
                "webhook_path": service.webhook_path(channel),
            }

        result = _run(_in_transaction(settings, fn))
        if as_json:
            click.echo(json.dumps(result, ensure_ascii=False))
        else:
            click.echo(
                f"added {adapter.title} channel {result['name']!r} (id {result['id']}); "
                f"webhook address: <public url>{result['webhook_path']}"
            )

    params: list[click.Parameter] = [
        click.Option(
            [f.flag, f.name], default=None, help=f.help + (" (required)" if f.required else "")
        )
        for f in fields
    ]
    params += [
        click.Option(["--name"], default=None, help="Name staff see for this channel."),
        click.Option(
            ["--bot/--no-bot", "bot"], default=None, help="The bot answers new dialogs first."
        ),
        click.Option(["--json", "as_json"], is_flag=True, help="Print the result as JSON."),
    ]
    return click.Command(
        kind,
        callback=run,
        params=params,
        help=f"Add a {adapter.title} channel; credentials are stored encrypted.",
    )


@channels.group("add", cls=_AddGroup)
def add_channel() -> None:
    """Add a channel: `okno channels add widget|telegram|viber|... --help`."""


@add_channel.command("widget")
@click.option("--key", required=True, help="Public widget key used in the <script> tag.")
@click.option("--name", default=None, help="Name customers see in the widget header.")
@click.option("--greeting", default=None)
@click.option("--color", default=None, help="Main colour, e.g. #1f6feb.")
@click.option("--origin", "origins", multiple=True, help="Allowed site origin (repeatable).")
@click.option("--topic", default=None, help="Routing topic of dialogs from it, e.g. cards.")
@click.option("--bot/--no-bot", "bot", default=None, help="The bot answers new dialogs first.")
@click.option("--json", "as_json", is_flag=True)
def channels_add_widget(
    key: str,
    name: str | None,
    greeting: str | None,
    color: str | None,
    origins: tuple[str, ...],
    topic: str | None,
    bot: bool | None,
    as_json: bool,
) -> None:
    """Add a web widget for the bank's site."""
    from okno.channels import service

    settings = _settings()

    async def fn(session: AsyncSession) -> dict[str, Any]:
        channel = await service.add_widget(
            session,
            key=key,
            name=name,
            greeting=greeting,
            color=color,
            allowed_origins=list(origins) or None,
            topic=topic,
            bot=bot,
        )
        return {"id": channel.id, "kind": channel.kind, "key": channel.key, "name": channel.name}

    result = _run(_in_transaction(settings, fn))
    base = settings.public_url.rstrip("/") or "https://okno.bank.example"
    snippet = f'<script src="{base}/widget.js" data-widget-key="{key}" async></script>'
    if as_json:
        click.echo(json.dumps({**result, "snippet": snippet}))
    else:
        click.echo(f"added widget {key} (id {result['id']}); put on the site:\n  {snippet}")


@channels.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print the channels as JSON.")
def channels_list(as_json: bool) -> None:
    """Every channel with its kind, state and webhook address (credentials never shown)."""
    from okno.channels import service

    settings = _settings()

    async def fn(session: AsyncSession) -> list[dict[str, Any]]:
        rows = await service.list_channels(session)
        return [
            {
                "id": c.id,
                "kind": c.kind,
                "name": c.name,
                "key": c.key,
                "is_active": c.is_active,
                "webhook_path": None if c.kind == "widget" else service.webhook_path(c),
            }
            for c in rows
        ]

    rows = _run(_in_transaction(settings, fn))
    if as_json:
        click.echo(json.dumps(rows, ensure_ascii=False))
        return
    for row in rows:
        state = "on" if row["is_active"] else "off"
        where = row["key"] or row["webhook_path"]
        click.echo(f"{row['id']:>4}  {row['kind']:<9} {state:<4} {row['name']}  {where}")


async def _messenger(settings: Settings, channel_id: int) -> Any:
    from okno.channels import kinds, service

    async def fn(session: AsyncSession) -> Any:
        channel = await service.get_channel(session, channel_id)
        if channel is None or not kinds.is_messenger(channel.kind):
            raise click.ClickException(f"no messenger channel has id {channel_id}")
        session.expunge(channel)
        return channel

    return await _in_transaction(settings, fn)


@channels.command("check")
@click.argument("channel_id", type=int)
def channels_check(channel_id: int) -> None:
    """Ask the platform whether the channel's credentials work (exit 1 when not)."""
    from okno.channels import checks

    settings = _settings()
    channel = _run(_messenger(settings, channel_id))
    result = _run(checks.check(settings, channel))
    if not result.ok:
        raise click.ClickException(f"{channel.kind} channel {channel_id}: {result.detail}")
    click.echo(f"{channel.kind} channel {channel_id} works: {result.detail}")


@channels.command("set-webhook")
@click.argument("channel_id", type=int)
@click.option("--url", default=None, help="okno's public address (default OKNO_PUBLIC_URL).")
def channels_set_webhook(channel_id: int, url: str | None) -> None:
    """Tell Telegram where to send updates: <public url>/hooks/telegram/<id>, with the
    channel's webhook secret."""
    import httpx

    from okno.channels import kinds, service
    from okno.channels.adapter import SendFailed

    settings = _settings()
    channel = _run(_messenger(settings, channel_id))
    adapter = kinds.adapter_for(channel.kind)
    set_webhook = getattr(adapter, "set_webhook", None)
    if set_webhook is None:
        raise click.ClickException(
            f"{channel.kind} webhooks are registered in the platform's own console "
            f"(docs/channels/{channel.kind}.md)"
        )
    base = (url or settings.public_url).rstrip("/")
    if not base.startswith("https://"):
        raise click.ClickException(
            "Telegram needs an https:// address: pass --url or set OKNO_PUBLIC_URL"
        )
    config = kinds.readable_config(channel, settings.signing_key())

    async def run() -> None:
        async with httpx.AsyncClient(timeout=settings.channel_send_timeout_seconds) as client:
            await set_webhook(client, config, base + service.webhook_path(channel))

    try:
        _run(run())
    except (SendFailed, httpx.HTTPError) as exc:
        raise click.ClickException(f"Telegram refused: {getattr(exc, 'reason', exc)}") from None
    click.echo(f"Telegram now sends updates to {base}{service.webhook_path(channel)}")


@channels.command("update")
@click.argument("key")
@click.option("--name", default=None)
@click.option("--greeting", default=None)
@click.option("--info-message", default=None, help="Banner text; '' removes it.")
@click.option("--color", default=None)
@click.option("--origin", "origins", multiple=True, help="Allowed site origin (repeatable).")
@click.option("--enable/--disable", "is_active", default=None)
@click.option("--topic", default=None, help="Routing topic of dialogs from it; '' removes it.")
@click.option("--bot/--no-bot", "bot", default=None, help="The bot answers new dialogs first.")
@click.option(
    "--identity-secret",
    default=None,
    help="Secret (32+ characters) the bank's site signs customer tokens with; '' removes it. "
    "See docs/flows.md.",
)
@click.option("--json", "as_json", is_flag=True)
def channels_update(
    key: str,
    name: str | None,
    greeting: str | None,
    info_message: str | None,
    color: str | None,
    origins: tuple[str, ...],
    is_active: bool | None,
    topic: str | None,
    bot: bool | None,
    identity_secret: str | None,
    as_json: bool,
) -> None:
    """Change a widget's name, greeting, info message, colour, sites, bot, identity secret
    or on/off state."""
    from okno.channels import service

    settings = _settings()

    async def fn(session: AsyncSession) -> dict[str, Any]:
        channel = await service.get_widget_for_admin(session, key=key)
        channel = await service.update_widget(
            session,
            channel,
            name=name,
            is_active=is_active,
            greeting=greeting,
            info_message=info_message,
            color=color,
            allowed_origins=list(origins) or None,
            topic=topic,
            bot=bot,
            identity_secret=identity_secret,
        )
        return {
            "id": channel.id,
            "key": channel.key,
            "name": channel.name,
            "is_active": channel.is_active,
            **service.config_for(channel, "admin"),  # secrets are not printed
        }

    result = _run(_in_transaction(settings, fn))
    click.echo(json.dumps(result, ensure_ascii=False) if as_json else f"updated widget {key}")


def _echo_counts(report: Any, as_json: bool, *fields: str) -> None:
    """An import's counts: one JSON object, or "created: 1, updated: 0, ..." for people."""
    out = {name: getattr(report, name) for name in fields}
    click.echo(json.dumps(out) if as_json else ", ".join(f"{k}: {v}" for k, v in out.items()))


def _echo_yaml(data: Any) -> None:
    """An export in the import format, readable (Cyrillic as is, keys in their order)."""
    import yaml

    click.echo(yaml.safe_dump(data, allow_unicode=True, sort_keys=False, default_flow_style=False))


def _read_yaml(file: Path) -> Any:
    """A YAML or JSON file's content, or a one-line error saying where it is broken."""
    import yaml

    from okno.bot.service import yaml_problem

    try:
        return yaml.safe_load(file.read_text(encoding="utf-8"))
    except OSError as exc:
        raise click.ClickException(f"cannot read {file}: {exc.strerror or exc}") from None
    except (UnicodeDecodeError, yaml.YAMLError) as exc:
        raise click.ClickException(
            f"{file} is not valid YAML or JSON: {yaml_problem(exc)}"
        ) from None


@main.group()
def kb() -> None:
    """The bot's knowledge base."""


@kb.command("import")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--json", "as_json", is_flag=True)
def kb_import(file: Path, as_json: bool) -> None:
    """Create or update articles from a YAML or JSON FILE (all or nothing)."""
    from okno.bot import service as bot

    data = _read_yaml(file)

    async def run(session: AsyncSession) -> Any:
        return await bot.import_articles(session, data)

    report = _run(_in_transaction(_settings(), run))
    _echo_counts(report, as_json, "created", "updated", "unchanged")


@kb.command("export")
def kb_export() -> None:
    """Print every active article as YAML (the import format)."""
    from okno.bot import service as bot

    _echo_yaml(_run(_in_transaction(_settings(), bot.export_articles)))


@main.group()
def flows() -> None:
    """The bot's button flows (docs/flows.md)."""


@flows.command("import")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--json", "as_json", is_flag=True)
def flows_import(file: Path, as_json: bool) -> None:
    """Create or update flows from a YAML or JSON FILE (all or nothing)."""
    from okno.bot import flows as bot_flows

    data = _read_yaml(file)

    async def run(session: AsyncSession) -> Any:
        return await bot_flows.import_flows(session, data)

    report = _run(_in_transaction(_settings(), run))
    _echo_counts(report, as_json, "created", "updated", "unchanged")


@flows.command("export")
def flows_export() -> None:
    """Print every active flow as YAML (the import format)."""
    from okno.bot import flows as bot_flows

    _echo_yaml(_run(_in_transaction(_settings(), bot_flows.export_flows)))


@main.group()
def places() -> None:
    """The branch and ATM directory the bot's location steps search."""


@places.command("import")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--replace", is_flag=True, help="Switch off places missing from FILE.")
@click.option("--json", "as_json", is_flag=True)
def places_import(file: Path, replace: bool, as_json: bool) -> None:
    """Create or update places from a CSV FILE with the header
    id,kind,name,city,address,lat,lon,hours,services (all or nothing)."""
    from okno.bot import places as bot_places

    try:
        text = file.read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise click.ClickException(f"cannot read {file}: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise click.ClickException(f"{file} is not UTF-8 text") from None

    async def run(session: AsyncSession) -> Any:
        return await bot_places.import_places(session, text, replace=replace)

    report = _run(_in_transaction(_settings(), run))
    _echo_counts(report, as_json, "created", "updated", "unchanged", "deactivated")


def _logs_to_stderr(settings: Settings) -> None:
    """Log lines go to stderr, so that stdout carries only the command's (JSON) output."""
    import structlog

    from okno.observability import configure_logging

    configure_logging(settings)
    structlog.configure(logger_factory=structlog.PrintLoggerFactory(sys.stderr))


@main.group()
def audit() -> None:
    """The audit log: verify its hash chain, ship it to the SIEM (docs/security.md)."""


@audit.command("verify")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def audit_verify(as_json: bool) -> None:
    """Walk the hash chain; exit 0 with the count, or 1 naming the first broken entry."""
    from okno.security import audit as audit_log

    async def check(session: AsyncSession) -> Any:
        return await audit_log.verify(session)

    result = _run(_in_transaction(_settings(), check))
    if as_json:
        click.echo(json.dumps(result.as_dict(), ensure_ascii=False))
    elif result.ok:
        span = f" (seq {result.first_seq}–{result.last_seq})" if result.count else ""
        base = f", entries up to {result.base_seq} removed by retention" if result.base_seq else ""
        click.echo(f"audit log OK: {result.count} entries verified{span}{base}")
    if not result.ok:
        broken = result.broken
        assert broken is not None
        click.echo(
            f"audit log BROKEN at entry {broken.seq} ({broken.problem}): {broken.detail}",
            err=True,
        )
        sys.exit(1)


@audit.command("ship")
@click.option("--json", "as_json", is_flag=True, help="Print entries shipped per target.")
def audit_ship(as_json: bool) -> None:
    """Ship entries not yet shipped to the configured file / syslog target now."""
    from okno.db import migrate as db_migrate
    from okno.db.session import Database
    from okno.security import siem

    settings = _settings()
    _logs_to_stderr(settings)
    if not siem.targets(settings):
        raise click.ClickException("no SIEM target: set OKNO_AUDIT_SHIP_FILE or OKNO_AUDIT_SYSLOG")

    async def ship() -> dict[str, int]:
        await db_migrate.upgrade(settings)
        db = Database(settings)
        try:
            return await siem.ship_once(db, settings)
        except siem.ShipError as exc:
            raise click.ClickException(f"cannot ship: {exc}") from None
        finally:
            await db.dispose()

    shipped = _run(ship())
    if as_json:
        click.echo(json.dumps(shipped))
    else:
        for target, count in shipped.items():
            click.echo(f"{target}: {count} entries shipped")


@main.group()
def retention() -> None:
    """Delete or anonymise data older than its retention period (OKNO_RETENTION_*)."""


@retention.command("run")
@click.option("--dry-run", is_flag=True, help="Report what would be removed; remove nothing.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
def retention_run(dry_run: bool, as_json: bool) -> None:
    """Run retention once with the configured periods and print its report."""
    from okno.security import retention as retention_service

    settings = _settings()
    _logs_to_stderr(settings)

    async def run(session: AsyncSession) -> dict[str, Any]:
        row = await retention_service.run(session, settings, dry_run=dry_run, trigger="cli")
        return retention_service.run_out(row)

    out = _run(_in_transaction(settings, run))
    if as_json:
        click.echo(json.dumps(out, ensure_ascii=False))
        return
    report = out["report"]
    verb = "would remove" if dry_run else "removed"
    click.echo(f"retention run {out['id']} ({'dry run' if dry_run else 'applied'}), {verb}:")
    click.echo(
        f"  messages: {report['messages']['messages_erased']} erased in "
        f"{report['messages']['dialogs']} dialogs"
    )
    click.echo(
        f"  attachments: {report['attachments']['files_deleted']} files "
        f"({report['attachments']['bytes_freed']} bytes), "
        f"{report['attachments']['rows_marked']} marked"
    )
    click.echo(f"  customers anonymised: {report['customers']['anonymised']}")
    click.echo(f"  recordings: {report['recordings']['note']}")
    audit_part = report["audit"]
    click.echo(f"  audit entries: {audit_part['entries_deleted']}")
    if audit_part.get("kept_reason"):
        click.echo(f"    kept: {audit_part['kept_reason']}")


@main.group()
def bot() -> None:
    """Ask the bot from the command line."""


@bot.command("ask")
@click.argument("text")
@click.option("--channel", default=None, help="Answer as for this channel kind (e.g. widget).")
@click.option("--json", "as_json", is_flag=True)
def bot_ask(text: str, channel: str | None, as_json: bool) -> None:
    """What the bot would do with TEXT: answer (with the article) or hand off."""
    from okno.bot import service as bot_service
    from okno.bot.index import Retriever
    from okno.db.base import utcnow

    if not text.strip():
        raise click.ClickException("the question is empty")
    settings = _settings()

    async def run(session: AsyncSession) -> Any:
        items = await bot_service.entries(session)
        return items, Retriever(items)

    items, retriever = _run(_in_transaction(settings, run))
    d = bot_service.decide(
        retriever,
        text,
        threshold=settings.bot_answer_threshold,
        channel=channel,
        now=utcnow(),
        answers={e.article_id: e for e in items},
    )
    out = {
        "decision": d.decision,
        "confidence": d.confidence,
        "article_id": d.article_id,
        "suggestions": [
            {"article_id": h.article_id, "title": h.title, "score": h.score} for h in d.suggestions
        ],
        "topic": d.topic,
        "answer": d.answer,
        "reason": d.reason,
    }
    if as_json:
        click.echo(json.dumps(out, ensure_ascii=False))
        return
    click.echo(f"{d.decision} ({d.reason}, confidence {d.confidence})")
    if d.answer:
        click.echo(d.answer)
    for h in d.suggestions:
        click.echo(f"  {h.score:.3f}  {h.article_id}: {h.title}")


async def seed_demo(session: AsyncSession) -> list[tuple[str, str, str]]:
    """Demo staff and the demo widget; existing ones are kept. Returns staff created."""
    import yaml
    from sqlalchemy import func, select

    from okno.bot import flows as bot_flows
    from okno.bot import places as bot_places
    from okno.bot import service as bot_service
    from okno.bot.models import Article, Flow, Place
    from okno.bot.text import DATA
    from okno.channels import service as channels_service
    from okno.channels.models import Channel
    from okno.operators import service as operators
    from okno.operators.models import User

    created = []
    for login, password, role, team, name in DEMO_STAFF:
        if await session.scalar(select(User.id).where(User.login == login)) is None:
            await operators.create_user(
                session,
                login=login,
                password=password,
                role=role,
                team=team,
                display_name=name,
                check_policy=False,  # the demo's well-known accounts, printed at start
            )
            created.append((login, password, role))
    if await session.scalar(select(Channel.id).where(Channel.key == DEMO_WIDGET_KEY)) is None:
        widget = await channels_service.add_widget(
            session,
            key=DEMO_WIDGET_KEY,
            name="Банк Пример — чат",
            color="#12a150",
            info_message="",
        )
        widget.config = {**(widget.config or {}), "bot": True}  # the bot answers first
    # the demo knowledge base (96 articles); re-running keeps edits made since
    if await session.scalar(select(func.count()).select_from(Article)) == 0:
        data = yaml.safe_load((DATA / "demo_kb.yaml").read_text(encoding="utf-8"))
        await bot_service.import_articles(session, data)
    # button flows and the branch/ATM directory
    if await session.scalar(select(func.count()).select_from(Flow)) == 0:
        data = yaml.safe_load((DATA / "demo_flows.yaml").read_text(encoding="utf-8"))
        await bot_flows.import_flows(session, data)
    if await session.scalar(select(func.count()).select_from(Place)) == 0:
        await bot_places.import_places(
            session, (DATA / "demo_places.csv").read_text(encoding="utf-8")
        )
    return created


@main.command()
@click.option("--host", default=None, help="Address to listen on.")
@click.option("--port", type=int, default=None, help="Port to listen on.")
def demo(host: str | None, port: int | None) -> None:
    """Migrate, add demo staff and a demo widget, print where to look, and serve."""
    settings = _settings(host=host, port=port)
    _run(_in_transaction(settings, seed_demo))
    base = settings.public_url or f"http://{settings.host}:{settings.port}"
    lines = [
        "okno demo is starting",
        f"  customer (bank page with the widget): {base}/demo",
        f"  operator page:                        {base}/",
        f"  API documentation:                    {base}/docs",
        "  staff accounts (login / password):",
    ]
    lines += [f"    {login} / {password}  ({role})" for login, password, role, _, _ in DEMO_STAFF]
    lines.append(f"  data directory: {settings.data_dir.resolve()}")
    click.echo("\n".join(lines))
    sys.stdout.flush()
    _serve(settings)


if __name__ == "__main__":  # pragma: no cover
    main()
