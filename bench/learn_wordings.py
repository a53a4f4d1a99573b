"""Teach the demo base the wordings of development sets: what a bank's content team does
with real traffic through the **Без ответа** tab, done with labelled sets.

Each in-scope message (not a ``layout`` line, not a repeat) becomes an example question of
its article in ``okno/bot/data/demo_kb.yaml``; each message that needs a person joins
``okno/bot/data/off_topic.yaml`` under ``from_development_sets``. The files are edited as
text, so their comments and layout stay as the editors wrote them. Held-out sets must never
be passed here (``bench/bot_eval/README.md`` says which sets are which).

    python3 bench/learn_wordings.py bench/bot_eval/blind3.yaml bench/bot_eval/more/*.yaml
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
KB = ROOT / "okno" / "bot" / "data" / "demo_kb.yaml"
OFF_TOPIC = ROOT / "okno" / "bot" / "data" / "off_topic.yaml"
CATEGORY = "from_development_sets"
HELD_OUT = ("blind4.yaml", "blind5.yaml")


def norm(text: str) -> str:
    return re.sub(r"\s+", " ", text.lower().replace("ё", "е").strip())


def _quoted(text: str) -> str:
    return json.dumps(" ".join(text.split()), ensure_ascii=False)  # a YAML double-quoted scalar


def add_questions(kb_text: str, extra: dict[str, list[str]]) -> tuple[str, int]:
    """Append ``extra[article id]`` to each article's ``questions`` list."""
    lines = kb_text.split("\n")
    out: list[str] = []
    added = 0
    article: str | None = None
    in_questions = False
    for line in lines:
        m = re.match(r"\s+- id: (\S+)\s*$", line)
        if m:
            article = m.group(1)
        if in_questions and not line.startswith("      - "):
            for text in extra.pop(article or "", []):
                out.append(f"      - {_quoted(text)}")
                added += 1
            in_questions = False
        if re.match(r"    questions:\s*$", line):
            in_questions = True
        out.append(line)
    if extra:
        raise SystemExit(f"no such article in the base: {', '.join(sorted(extra))}")
    return "\n".join(out), added


def load(path: Path) -> list[dict[str, Any]]:
    if path.name in HELD_OUT:
        raise SystemExit(f"{path.name} is a held-out set: it must never be learned")
    try:
        data = yaml.safe_load(path.read_text("utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise SystemExit(f"{path}: cannot read it ({exc})") from None
    if not isinstance(data, dict) or not isinstance(data.get("phrasings"), list):
        raise SystemExit(f"{path}: no list under 'phrasings'")
    return list(data["phrasings"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("sets", nargs="+", type=Path)
    args = parser.parse_args()
    kb_text = KB.read_text("utf-8")
    kb = yaml.safe_load(kb_text)
    known = {norm(a["title"]) for a in kb["articles"]}
    known |= {norm(q) for a in kb["articles"] for q in a["questions"]}
    off_text = OFF_TOPIC.read_text("utf-8")
    off = yaml.safe_load(off_text) or {}
    seen_off = {norm(str(t)) for lines in off.values() for t in lines or []}
    extra: dict[str, list[str]] = {}
    handoffs: list[str] = []
    sets = [load(path) for path in args.sets]  # every file checked before anything is written
    for phrasings in sets:
        for p in phrasings:
            text = str(p["text"])
            key = norm(text)
            if not key:
                continue
            if p.get("article"):
                if p.get("style") == "layout" or key in known:
                    continue
                known.add(key)
                extra.setdefault(str(p["article"]), []).append(text)
            elif key not in seen_off:
                seen_off.add(key)
                handoffs.append(text)
    new_kb, added = add_questions(kb_text, extra)
    if CATEGORY not in off:
        off_text = off_text.rstrip("\n") + f"\n{CATEGORY}:\n"
    elif list(off)[-1] != CATEGORY:
        raise SystemExit(f"{CATEGORY} must be the last category of {OFF_TOPIC.name}")
    off_text = off_text.rstrip("\n") + "\n" + "".join(f"  - {_quoted(t)}\n" for t in handoffs)
    yaml.safe_load(new_kb)  # both still load
    yaml.safe_load(off_text)
    KB.write_text(new_kb, "utf-8")
    OFF_TOPIC.write_text(off_text, "utf-8")
    print(f"{added} example questions added, {len(handoffs)} messages that need a person")


if __name__ == "__main__":
    sys.exit(main())
