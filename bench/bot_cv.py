"""Cross-validated figures on the development sets, now that the demo base has learned their
wordings.

Since 2026-11-23 the demo knowledge base carries the in-scope wordings of the development
sets (``phrasings.yaml``, ``blind*.yaml`` up to ``blind3.yaml``, and the eight writers of
``more/``) as example questions, and ``off_topic.yaml`` their messages that need a person —
the way a bank's content team feeds customers' own wordings back through the **Без ответа**
tab. Evaluated directly, those sets would only measure recall of known text. This script
takes those wordings out again and cross-validates: each fold is measured by a base that
learned the other folds' wordings (``learned``) or none of them (``base``), so choices such
as the default threshold can still be made without the held-out sets. ``--by-set`` makes
each set (each writer) one fold: the rule for choices, since shuffled folds share writers.

    python3 bench/bot_cv.py --by-set --mode learned   # leave one writer out
    python3 bench/bot_cv.py --mode learned --folds 5
"""

from __future__ import annotations

import argparse
import dataclasses
import random
import re
import sys
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from bot_eval import evaluate, load_entries  # noqa: E402

from okno.bot.calibration import load_off_topic  # noqa: E402
from okno.bot.index import Entry, Retriever  # noqa: E402

EVAL = ROOT / "bench" / "bot_eval"
HELD_OUT = ("blind4.yaml", "blind5.yaml")  # never learned, never cross-validated
# Every labelled set the demo base has learned (bench/learn_wordings.py).
SETS = (
    "phrasings.yaml",
    "blind.yaml",
    "blind2.yaml",
    "blind3.yaml",
    *sorted(f"more/{p.name}" for p in (EVAL / "more").glob("*.yaml")),
)
THRESHOLDS = (0.1, 0.15, 0.2, 0.25, 0.3, 0.35, 0.4, 0.45, 0.5)


def _norm(text: str) -> str:
    return re.sub(r"\s+", " ", text.lower().replace("ё", "е").strip())


def load_pool(sets: tuple[str, ...] = SETS) -> list[dict[str, Any]]:
    pool: list[dict[str, Any]] = []
    for n, name in enumerate(sets):
        for p in yaml.safe_load((EVAL / name).read_text("utf-8"))["phrasings"]:
            pool.append({**p, "_set": n})
    return pool


def run(
    mode: str, folds: int, seed: int = 11, *, by_set: bool = False, sets: tuple[str, ...] = SETS
) -> dict[float, dict[str, float]]:
    """``by_set``: each set is one fold (leave one writer out), which says how the bot does
    on a writer it has never learned from; otherwise the messages are dealt into ``folds``."""
    pool = load_pool(sets)
    texts = {_norm(str(p["text"])) for p in pool}
    # the base and the off-topic list as they would be without the development wordings
    entries = [
        dataclasses.replace(e, questions=tuple(q for q in e.questions if _norm(q) not in texts))
        for e in load_entries()
    ]
    off = [t for t in load_off_topic() if _norm(t) not in texts]
    random.Random(seed).shuffle(pool)
    fold_of = [p["_set"] if by_set else i % folds for i, p in enumerate(pool)]
    if by_set:
        folds = len(sets)
    totals = {
        t: dict.fromkeys(("top1", "top3", "scope", "handoffs", "right", "should"), 0.0)
        for t in THRESHOLDS
    }
    for k in range(folds):
        test = [p for i, p in enumerate(pool) if fold_of[i] == k]
        train = [p for i, p in enumerate(pool) if fold_of[i] != k]
        base: list[Entry] = entries
        lines = off
        if mode == "learned":
            extra: dict[str, list[str]] = {}
            for p in train:
                if p.get("article") and p.get("style") != "layout":
                    extra.setdefault(p["article"], []).append(str(p["text"]))
            base = [
                dataclasses.replace(e, questions=(*e.questions, *extra.get(e.article_id, [])))
                for e in entries
            ]
            lines = [*off, *(str(p["text"]) for p in train if not p.get("article"))]
        retriever = Retriever(base, off_topic=lines)
        for threshold in THRESHOLDS:
            m = evaluate(retriever, test, threshold)
            t = totals[threshold]
            right = m["handoff_recall"] * m["out_of_scope"]
            t["top1"] += m["top1"] * m["in_scope"]
            t["top3"] += m["top3"] * m["in_scope"]
            t["scope"] += m["in_scope"]
            t["should"] += m["out_of_scope"]
            t["right"] += right
            t["handoffs"] += right / m["handoff_precision"] if m["handoff_precision"] else 0.0
    return {
        threshold: {
            "top1": t["top1"] / t["scope"],
            "top3": t["top3"] / t["scope"],
            "precision": t["right"] / t["handoffs"] if t["handoffs"] else 0.0,
            "recall": t["right"] / t["should"] if t["should"] else 0.0,
        }
        for threshold, t in totals.items()
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mode", choices=("base", "learned", "both"), default="both")
    parser.add_argument("--folds", type=int, default=4)
    parser.add_argument(
        "--by-set", action="store_true", help="one fold per set: leave one writer out"
    )
    parser.add_argument("--sets", nargs="+", help=f"sets under bench/bot_eval (default: {SETS})")
    args = parser.parse_args()
    if args.folds < 2:
        parser.error("--folds must be at least 2")
    sets = tuple(args.sets or SETS)
    for name in sets:
        if Path(name).name in HELD_OUT:
            parser.error(f"{name} is a held-out set: measure it with bench/bot_eval.py")
        if not (EVAL / name).is_file():
            parser.error(f"no such set: bench/bot_eval/{name}")
    for mode in ("base", "learned") if args.mode == "both" else (args.mode,):
        how = "leave-one-set-out" if args.by_set else f"{args.folds}-fold"
        print(f"{mode}: {how} over {', '.join(sets)}")
        print("  threshold  top-1   top-3   hand-off precision  recall  smaller margin")
        for threshold, m in run(mode, args.folds, by_set=args.by_set, sets=sets).items():
            margin = min(m["precision"] - 0.85, m["recall"] - 0.90)
            print(
                f"  {threshold:9.2f}  {m['top1']:6.1%}  {m['top3']:6.1%}  "
                f"{m['precision']:18.1%}  {m['recall']:6.1%}  {margin:+.3f}"
            )


if __name__ == "__main__":
    main()
