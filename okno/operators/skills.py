"""Operator skills: ``{"cards": 3, "credits": 1}``, a skill name and a level 1..5.

Routing matches a queue's skill and minimum level against these. Kept free of the database
so the API schemas, the service and the CLI check skills the same way.
"""

from __future__ import annotations

import re
from typing import Any

MAX_SKILLS = 50
MIN_LEVEL = 1
MAX_LEVEL = 5
# letters (any alphabet), digits, "_" and "-"; 1-50 characters
NAME_RE = re.compile(r"[\w-]{1,50}")


class SkillsError(ValueError):
    """Skills that cannot be stored, with a sentence saying why."""


def check_name(name: object) -> str:
    if not isinstance(name, str) or not NAME_RE.fullmatch(name):
        raise SkillsError(
            f"skill name {name!r} must be 1-50 letters, digits, '_' or '-' (e.g. cards)"
        )
    return name


def check_level(name: str, level: object) -> int:
    # bool is an int in Python; true is not a level
    if isinstance(level, bool) or not isinstance(level, int):
        raise SkillsError(f"skill {name}: the level must be a whole number 1-5")
    if not MIN_LEVEL <= level <= MAX_LEVEL:
        raise SkillsError(f"skill {name}: the level must be 1-5, not {level}")
    return level


def normalize(value: Any) -> dict[str, int]:
    """Check a skills object; ``None`` and ``{}`` mean no skills. Raises SkillsError."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise SkillsError('skills must be an object like {"cards": 3}')
    if len(value) > MAX_SKILLS:
        raise SkillsError(f"at most {MAX_SKILLS} skills")
    return {check_name(k): check_level(k, v) for k, v in value.items()}


def parse(spec: str) -> dict[str, int]:
    """``"cards:3, credits"`` -> ``{"cards": 3, "credits": 1}`` (no level means 1).

    The form the CLI and the admin page take; an empty text means no skills."""
    skills: dict[str, int] = {}
    for part in spec.split(","):
        part = part.strip()
        if not part:
            continue
        name, sep, level_text = (p.strip() for p in part.partition(":"))
        check_name(name)
        if not sep:
            level = MIN_LEVEL
        elif re.fullmatch(r"\d{1,3}", level_text):
            level = int(level_text)
        else:
            raise SkillsError(f"skill {name}: the level must be a whole number 1-5")
        if name in skills:
            raise SkillsError(f"skill {name} is given twice")
        skills[name] = check_level(name, level)
    return normalize(skills)


def describe(skills: dict[str, int]) -> str:
    """The text form back: ``{"cards": 3}`` -> ``"cards:3"``."""
    return ", ".join(f"{name}:{level}" for name, level in skills.items())
