"""Staff schemas: sign-in, users and teams."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

from okno.inputs import Input


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


class UsersOut(BaseModel):
    users: list[UserOut]


class TeamOut(BaseModel):
    id: int
    name: str


class TeamsOut(BaseModel):
    teams: list[TeamOut]


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
