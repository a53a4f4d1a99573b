"""`okno kb import`, `okno kb export` and `okno bot ask --json`, as a real process."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from okno.bot.text import DATA
from tests.bot.test_kb import KB
from tests.system.server import okno_env, run_cli
from tests.system.test_cli import assert_clean_failure

pytestmark = pytest.mark.slow


def test_import_ask_and_export_from_the_command_line(tmp_path: Path) -> None:
    env = okno_env(tmp_path / "data")
    kb = tmp_path / "kb.yaml"
    kb.write_text(KB, encoding="utf-8")
    out = run_cli(["kb", "import", str(kb), "--json"], env)
    assert json.loads(out.stdout) == {"created": 2, "updated": 0, "unchanged": 0}

    asked = json.loads(run_cli(["bot", "ask", "pf,kjrbhjdfnm rfhne", "--json"], env).stdout)
    assert (asked["decision"], asked["article_id"], asked["topic"]) == (
        "answer",
        "card-block",
        "cards",
    )
    assert set(asked) >= {"decision", "confidence", "article_id", "suggestions", "topic"}
    person = json.loads(run_cli(["bot", "ask", "позовите оператора", "--json"], env).stdout)
    assert person["decision"] == "handoff"

    exported = yaml.safe_load(run_cli(["kb", "export"], env).stdout)
    assert [a["id"] for a in exported["articles"]] == ["card-block", "sbp"]


def test_the_demo_knowledge_base_imports_cleanly(tmp_path: Path) -> None:
    env = okno_env(tmp_path / "data")
    out = run_cli(["kb", "import", str(DATA / "demo_kb.yaml"), "--json"], env)
    assert json.loads(out.stdout)["created"] >= 60


def test_bad_files_and_questions_fail_with_a_clear_message(tmp_path: Path) -> None:
    env = okno_env(tmp_path / "data")
    assert_clean_failure(run_cli(["kb", "import", str(tmp_path / "nope.yaml")], env, check=False))
    broken = tmp_path / "broken.yaml"
    broken.write_text("articles: [", encoding="utf-8")
    assert_clean_failure(run_cli(["kb", "import", str(broken)], env, check=False), "yaml")
    wrong = tmp_path / "wrong.yaml"
    wrong.write_text(
        "articles:\n  - id: 'has spaces'\n    title: x\n    answer: y\n", encoding="utf-8"
    )
    assert_clean_failure(
        run_cli(["kb", "import", str(wrong)], env, check=False), "cannot be imported"
    )
    assert_clean_failure(run_cli(["bot", "ask", "  ", "--json"], env, check=False), "empty")
