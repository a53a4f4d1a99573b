"""Bot and knowledge-base shapes (the contract in DESIGN.md, extended with the answer)."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

from okno.inputs import Input


class AskRequest(Input):
    text: str = Field(min_length=1, max_length=4000)


class Suggestion(BaseModel):
    article_id: str
    title: str
    score: float


class AskResponse(BaseModel):
    decision: str = Field(description="answer or handoff")
    confidence: float = Field(ge=0, le=1)
    article_id: str | None
    suggestions: list[Suggestion]
    topic: str | None = Field(description="The likely topic: where routing sends a hand-off.")
    answer: str | None = Field(default=None, description="The article's answer when answering.")
    reason: str = Field(description="confident, unsure, human_requested, own_case or empty")


class SuggestResponse(BaseModel):
    suggestions: list[Suggestion]


class ImportResult(BaseModel):
    created: int
    updated: int
    unchanged: int


class ReplySuggestionOut(BaseModel):
    id: int
    conversation_id: int
    message_id: int = Field(description="The customer message it answers.")
    rank: int = Field(description="1 is the best.")
    source: str = Field(description="kb (a knowledge-base article) or history (colleagues)")
    ref: str = Field(description="The article id, or the id of the earlier operator message.")
    text: str
    score: float
    outcome: str | None = Field(description="null (open), accepted, edited or rejected")
    sent_message_id: int | None
    decided_by: int | None
    decided_at: datetime | None


class ReplySuggestionsOut(BaseModel):
    conversation_id: int
    message_id: int | None = Field(
        description="The dialog's newest customer message, which the suggestions answer."
    )
    answered: bool = Field(description="An operator or the bot has replied since that message.")
    suggestions: list[ReplySuggestionOut]
