"""Shapes of the supervisor's live board."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field


class Load(BaseModel):
    waiting: int = Field(description="Unfinished dialogs nobody has taken yet.")
    longest_wait_seconds: int = Field(
        description="How long the longest-waiting dialog has waited: since the customer's "
        "oldest unanswered message, else since the dialog was created."
    )
    in_progress: int = Field(description="Dialogs an operator is serving (status assigned).")


class QueueRow(Load):
    topic: str | None = Field(description="The dialog's topic; null for dialogs without one.")


class ChannelRow(Load):
    channel_id: int
    kind: str
    name: str


class TeamRow(Load):
    team_id: int | None = Field(description="null: dialogs not yet given a team.")
    name: str = Field(description="Empty for the row of dialogs without a team.")


class OperatorRow(BaseModel):
    user_id: int
    name: str
    team_id: int | None
    role: str
    status: str = Field(description="online, break or offline, as the operator chose.")
    since: datetime
    connected: bool = Field(description="A workspace of theirs was seen within a minute.")
    available: bool = Field(description="Online and connected: routing may give them dialogs.")
    open_dialogs: int
    capacity: int


class Totals(Load):
    online: int = Field(description="Operators (role operator) online and connected.")
    on_break: int = Field(description="Operators (role operator) on a break.")


class BoardOut(BaseModel):
    generated_at: datetime
    queues: list[QueueRow]
    channels: list[ChannelRow]
    teams: list[TeamRow]
    operators: list[OperatorRow]
    totals: Totals
