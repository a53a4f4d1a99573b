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


# ------------------------------------------------------------------ bot metrics


class BotDialogs(BaseModel):
    started_with_bot: int = Field(description="Dialogs created in the period the bot took first.")
    closed_by_bot: int = Field(description="Of those, closed with the bot and no person.")
    closed_by_bot_share: float = Field(description="closed_by_bot / started_with_bot (0..1).")
    with_bot_now: int = Field(description="Still with the bot (not closed, not handed off).")
    handed_off: int = Field(description="Reached a person.")
    handoff_reasons: dict[str, int] = Field(
        description="Handed-off dialogs by why: unsure, empty, human_requested, own_case, repeated, "
        "attachment (the bot's last decision), button (the customer pressed 'talk to a "
        "person' after an answer, or staff took the dialog over)."
    )


class BotSuggestionClicks(BaseModel):
    shown: int = Field(description="Customer messages sent while as-you-type suggestions showed.")
    picked: int = Field(description="Of those, a suggestion was picked.")
    click_through: float = Field(description="picked / shown (0..1).")


class ReplySuggestionUse(BaseModel):
    shown: int = Field(description="Reply suggestions offered to operators.")
    messages: int = Field(description="Customer messages that had suggestions.")
    accepted: int
    edited: int
    rejected: int
    ignored: int = Field(description="Offered, no decision recorded.")
    acceptance_rate: float = Field(
        description="(accepted + edited) / shown: suggestions operators used (0..1)."
    )


class BotChannelRow(BaseModel):
    kind: str
    started_with_bot: int
    closed_by_bot: int
    handed_off: int
    answers: int
    suggestions_shown: int
    suggestions_picked: int


class BotMetricsOut(BaseModel):
    since: datetime
    until: datetime
    dialogs: BotDialogs
    answers: int = Field(description="Answers the bot gave in dialogs in the period.")
    suggestions: BotSuggestionClicks
    reply_suggestions: ReplySuggestionUse
    channels: list[BotChannelRow]
