"""Shapes of the knowledge-base editor, the learning loop and the threshold view."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

from okno.inputs import MAX_ID, BodyId, Input

ArticleKey = Field(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")


class ArticleFields(Input):
    """What the editor sends; checked like an imported article (``clean_article``)."""

    title: str = Field(max_length=300)
    questions: list[str] = Field(default_factory=list, max_length=100)
    answer: str = Field(max_length=20_000)
    topic: str | None = Field(default=None, max_length=100)
    tags: list[str] = Field(default_factory=list, max_length=100)
    channels: list[str] = Field(default_factory=list, max_length=20)
    valid_from: date | datetime | None = None
    valid_to: date | datetime | None = None

    def raw(self) -> dict[str, Any]:
        return self.model_dump()


class ArticleCreate(ArticleFields):
    id: str = ArticleKey


class ArticleUpdate(ArticleFields):
    version: int = Field(ge=1, le=MAX_ID, description="The version you edited.")


class VersionRef(Input):
    version: int = Field(ge=1, le=MAX_ID, description="The version you saw.")


class RestoreRequest(VersionRef):
    restore: int = Field(ge=1, le=MAX_ID, description="The old version to make current.")


class Person(BaseModel):
    id: int
    name: str


class ArticleSummary(BaseModel):
    id: str = Field(description="The stable external id.")
    title: str
    topic: str | None
    questions: int = Field(description="How many example questions.")
    channels: list[str]
    valid_from: datetime | None
    valid_to: datetime | None
    is_active: bool
    version: int
    updated_at: datetime
    updated_by: Person | None


class ArticleList(BaseModel):
    articles: list[ArticleSummary]
    total: int
    topics: list[str] = Field(description="Every topic in the base (for the filter).")


class ArticleOut(BaseModel):
    id: str
    title: str
    questions: list[str]
    answer: str
    topic: str | None
    tags: list[str]
    channels: list[str]
    valid_from: datetime | None
    valid_to: datetime | None
    is_active: bool
    version: int
    updated_at: datetime
    updated_by: Person | None


class VersionSummary(BaseModel):
    version: int
    source: str = Field(description="edit or import")
    changed_by: Person | None
    at: datetime
    changed: list[str] = Field(description="Fields that differ from the version before.")


class HistoryOut(BaseModel):
    article_id: str
    versions: list[VersionSummary]


class VersionOut(VersionSummary):
    content: dict[str, Any]


class UnansweredGroupOut(BaseModel):
    turn_ids: list[int]
    count: int
    examples: list[str]
    questions: list[str] = Field(description="Distinct wordings, to start an article with.")
    topic: str | None
    newest: datetime


class UnansweredOut(BaseModel):
    days: int
    groups: list[UnansweredGroupOut]


class ReviewRequest(Input):
    turn_ids: list[BodyId] = Field(min_length=1, max_length=5000)
    action: Literal["dismissed", "article"]
    article_id: str | None = Field(default=None, max_length=100)


class ReviewResult(BaseModel):
    reviewed: int


class TemplateCandidateOut(BaseModel):
    key: str
    text: str
    dialogs: int = Field(description="Distinct dialogs it was sent in.")
    uses: int
    operators: int
    last_used: datetime
    shortcut: str = Field(description="A suggested shortcut; the admin may change it.")
    title: str


class TemplateCandidatesOut(BaseModel):
    days: int
    min_dialogs: int
    candidates: list[TemplateCandidateOut]


class AcceptCandidate(Input):
    scope: Literal["shared", "team"] = "shared"
    team_id: int | None = Field(default=None, ge=1, le=MAX_ID)
    shortcut: str = Field(min_length=1, max_length=50, pattern=r"^[\w\-]+$")
    title: str = Field(min_length=1, max_length=200)
    body: str = Field(min_length=1, max_length=4000)


class AcceptedOut(BaseModel):
    saved_reply_id: int
    shortcut: str


class TradeOffRow(BaseModel):
    threshold: float
    answered: int
    handed_off: int
    answer_share: float
    handoff_share: float
    current: bool


class ThresholdOut(BaseModel):
    threshold: float = Field(description="The setting in force.")
    setting: str = Field(description="The environment variable that sets it.")
    days: int
    questions: int = Field(description="Bot turns counted (those the threshold decides).")
    rows: list[TradeOffRow]
