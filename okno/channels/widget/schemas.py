"""Widget channel shapes (the public contract in DESIGN.md)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from okno.inputs import Input


class Visitor(BaseModel):
    model_config = ConfigDict(extra="ignore")
    id: str | None = Field(default=None, max_length=100)
    name: str | None = Field(default=None, max_length=200)


class SessionRequest(Input):
    widget_key: str = Field(min_length=1, max_length=100)
    visitor: Visitor | None = None
    customer_token: str | None = Field(
        default=None,
        max_length=4000,
        description="When the customer is signed in to the bank's site: a JWT the bank signed "
        "(HS256, the widget's identity secret) with sub = the bank's customer id and exp. The "
        "dialog is then verified (self-service steps may run) and one history follows the "
        "customer across devices.",
    )


class WidgetConfig(BaseModel):
    name: str
    greeting: str
    info_message: str
    color: str
    bot: bool = Field(
        default=False,
        description="The bot serves new dialogs first: the widget suggests questions while "
        "the customer types and offers a button to talk to a person.",
    )


class SessionResponse(BaseModel):
    session_token: str
    conversation_id: int | None = Field(
        description="The visitor's unfinished dialog; null until the first message."
    )
    visitor_id: str = Field(description="Keep it: a new session with it resumes the history.")
    widget: WidgetConfig


class Location(Input):
    lat: float = Field(ge=-90, le=90)
    lon: float = Field(ge=-180, le=180)


class WidgetMessage(Input):
    client_msg_id: str = Field(min_length=1, max_length=100)
    text: str = Field(min_length=1)
    article_id: str | None = Field(
        default=None,
        max_length=100,
        description="The suggested question the visitor picked: the bot answers it at once.",
    )
    suggested: bool = Field(
        default=False, description="Suggestions were on screen when the visitor sent it."
    )
    button: str | None = Field(
        default=None,
        max_length=200,
        description="The payload of a bot button the visitor pressed (text is its label).",
    )
    location: Location | None = Field(default=None, description="A location the visitor shared.")


class Rated(BaseModel):
    conversation_id: int
    rating: int
