"""Settings: env, TOML file, and errors that name the key."""

from __future__ import annotations

from pathlib import Path

import pytest

from okno.settings import SettingsError, load_settings


def test_env_overrides_defaults(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("OKNO_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("OKNO_MAX_TEXT_CHARS", "100")
    settings = load_settings()
    assert settings.max_text_chars == 100
    assert settings.effective_database_url.endswith(f"{tmp_path}/okno.db")


def test_toml_file_is_read_and_env_wins(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    config = tmp_path / "okno.toml"
    config.write_text('port = 9001\nredis_url = "redis://127.0.0.1:6379/2"\n')
    monkeypatch.setenv("OKNO_CONFIG", str(config))
    monkeypatch.setenv("OKNO_PORT", "9002")
    settings = load_settings()
    assert settings.port == 9002 and settings.redis_url == "redis://127.0.0.1:6379/2"


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("OKNO_PORT", "http"),
        ("OKNO_LOG_LEVEL", "loud"),
        ("OKNO_DATABASE_URL", "mysql://x"),
        ("OKNO_SECRET_KEY", "short"),
        ("OKNO_JOB_RETRY_BASE_SECONDS", "0"),
        ("OKNO_JOB_RETRY_MAX_SECONDS", "1"),  # shorter than the first wait (2 s)
    ],
)
def test_bad_values_name_the_key(monkeypatch: pytest.MonkeyPatch, key: str, value: str) -> None:
    monkeypatch.setenv(key, value)
    with pytest.raises(SettingsError) as err:
        load_settings()
    assert key in str(err.value)


def test_plain_postgres_url_gets_the_async_driver() -> None:
    settings = load_settings(database_url="postgresql://u@db/okno")
    assert settings.effective_database_url == "postgresql+asyncpg://u@db/okno"


def test_generated_secret_key_is_kept_across_restarts(tmp_path: Path) -> None:
    first = load_settings(data_dir=tmp_path).signing_key()
    assert load_settings(data_dir=tmp_path).signing_key() == first and len(first) >= 32


def test_docs_list_every_setting() -> None:
    from pathlib import Path

    from okno.settings import settings_markdown

    documented = (Path(__file__).parent.parent / "docs" / "configuration.md").read_text()
    assert documented == settings_markdown(), (
        "run: okno settings --markdown > docs/configuration.md"
    )
