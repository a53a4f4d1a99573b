"""Bot and knowledge-base shapes (the contract in DESIGN.md, extended with the answer)."""

from __future__ import annotations

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
    reason: str = Field(description="confident, unsure, human_requested or empty")


class SuggestResponse(BaseModel):
    suggestions: list[Suggestion]


class ImportResult(BaseModel):
    created: int
    updated: int
    unchanged: int
