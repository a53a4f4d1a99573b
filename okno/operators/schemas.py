"""Staff schemas: sign-in, users and teams."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, BeforeValidator, Field, StringConstraints, field_validator
from pydantic_core import PydanticCustomError

from okno.inputs import MAX_ID, Input
from okno.operators import skills as skill_rules

# okno.security.permissions.INTERACTIVE_ROLES (a test keeps them equal); integration
# accounts are made with their API token, not here.
Role = Literal["operator", "senior_operator", "supervisor", "admin", "security_officer", "auditor"]
Login = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100, pattern=r"^\S+$")
]
PersonName = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
TeamName = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]
# The length policy is checked by the service (code ``weak_password``); the bound here only
# keeps a huge body from reaching argon2.
NewPassword = Annotated[str, Field(max_length=500)]
TeamId = Annotated[int, Field(ge=1, le=MAX_ID)]
Capacity = Annotated[int, Field(ge=1, le=50)]


def _check_skills(value: object) -> dict[str, int]:
    # One error on the field itself ("skills", type invalid_skills), whatever is wrong
    # inside: the admin form shows it next to the skills box.
    try:
        return skill_rules.normalize(value)
    except skill_rules.SkillsError as exc:
        raise PydanticCustomError("invalid_skills", "{reason}", {"reason": str(exc)}) from None


Skills = Annotated[
    dict[str, int],
    BeforeValidator(_check_skills),
    Field(
        description="Skill name (1-50 letters, digits, _ or -) -> level 1..5; routing "
        "matches a queue's skill and minimum level against these.",
        examples=[{"cards": 3, "credits": 1}],
    ),
]


class TokenRequest(Input):
    login: str = Field(min_length=1, max_length=100)
    password: str = Field(min_length=1, max_length=500)
    otp: str | None = Field(default=None, max_length=20)


class TokenResponse(BaseModel):
    access_token: str
    token_type: str = "bearer"
    expires_in: int


class UserOut(BaseModel):
    id: int
    login: str
    name: str
    role: str
    team_id: int | None
    capacity: int
    skills: dict[str, int] = Field(description='{"cards": 3}: skill -> level 1..5')
    is_active: bool


class UsersOut(BaseModel):
    users: list[UserOut]


class TeamOut(BaseModel):
    id: int
    name: str


class TeamsOut(BaseModel):
    teams: list[TeamOut]


class UserCreate(Input):
    """A new staff account, made by an admin."""

    login: Login
    name: PersonName
    password: NewPassword
    role: Role
    team_id: TeamId | None = None
    capacity: Capacity = 5
    skills: Skills = Field(default_factory=dict)


class UserUpdate(Input):
    """Fields to change; omitted ones stay. ``team_id: null`` takes the user out of their
    team, so "not given" and ``null`` differ (see ``model_fields_set``); ``skills: null``
    (or ``{}``) clears the skills."""

    name: PersonName | None = None
    role: Role | None = None
    team_id: TeamId | None = None
    capacity: Capacity | None = None
    is_active: bool | None = None
    password: NewPassword | None = None
    skills: Skills | None = Field(default=None, description="null or {} clears the skills")

    @field_validator("name", "role", "capacity", "is_active", "password")
    @classmethod
    def _not_null(cls, value: object) -> object:
        # Only team_id has a meaning for null; elsewhere a null is a client bug, not "keep".
        if value is None:
            raise ValueError("may not be null; leave the field out to keep it")
        return value


class TeamIn(Input):
    name: TeamName


class PresenceIn(Input):
    status: Literal["online", "break", "offline"]


class PresenceOut(BaseModel):
    user_id: int
    name: str
    role: str
    team_id: int | None
    status: str
    since: datetime
    connected: bool
    available: bool


class PresenceListOut(BaseModel):
    operators: list[PresenceOut]


class BrowserSessionOut(BaseModel):
    csrf_token: str
    expires_in: int
    user: UserOut
