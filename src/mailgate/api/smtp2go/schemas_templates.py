"""SMTP2GO ``/v3/template/...`` request and response models (SMTP2GO's field names).

SMTP2GO names a template by ``id`` (the seed document says ``template_id``: both are taken).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field, StringConstraints

from mailgate.api.smtp2go.schemas import ShortText, Smtp2goRequest
from mailgate.services.template_rendering import MAX_TEMPLATE_CHARS
from mailgate.services.templates import MAX_TAG, MAX_TAGS

__all__ = [
    "TemplateAddRequest",
    "TemplateDeletedEnvelope",
    "TemplateEditRequest",
    "TemplateLookup",
    "TemplateSearchEnvelope",
    "TemplateSearchRequest",
    "TemplateViewEnvelope",
    "TemplateWrittenEnvelope",
]

Source = Annotated[str, StringConstraints(max_length=MAX_TEMPLATE_CHARS)]
TemplateTag = Annotated[str, StringConstraints(min_length=1, max_length=MAX_TAG)]
Tags = Annotated[list[TemplateTag], Field(max_length=MAX_TAGS)]
TemplateRef = Annotated[str, StringConstraints(min_length=1, max_length=64)]


class TemplateLookup(Smtp2goRequest):
    id: TemplateRef | None = None
    template_id: TemplateRef | None = Field(default=None, description="Same as ``id``.")


class TemplateAddRequest(Smtp2goRequest):
    template_name: ShortText | None = None
    id: TemplateRef | None = Field(
        default=None, description="The id to give it (5 to 40 characters); omitted: generated."
    )
    subject: Source | None = None
    html_body: Source | None = None
    text_body: Source | None = None
    template_variables: dict[str, Any] | None = Field(
        default=None, description="Sample values, used by previews."
    )
    tags: Tags | None = None


class TemplateEditRequest(TemplateLookup):
    new_id: TemplateRef | None = None
    template_name: ShortText | None = None
    subject: Source | None = None
    html_body: Source | None = None
    text_body: Source | None = None
    template_variables: dict[str, Any] | None = None
    tags: Tags | None = None


class TemplateSearchRequest(Smtp2goRequest):
    query: ShortText | None = Field(default=None, description="The seed's name: a fuzzy term.")
    search_terms: Annotated[list[ShortText], Field(max_length=20)] | None = None
    fuzzy_search: bool | None = None
    tags: Annotated[list[TemplateTag], Field(max_length=20)] | None = None
    sort_direction: Literal["asc", "desc"] | None = None
    page_size: int | None = Field(default=None, ge=1, le=1000)
    continue_token: ShortText | None = None


class TemplateWritten(BaseModel):
    id: str
    template_name: str
    subject: str
    html_body: str
    text_body: str
    template_variables: dict[str, Any]
    tags: list[str]
    last_updated: str


class TemplateWrittenEnvelope(BaseModel):
    request_id: str
    data: TemplateWritten


class TemplateViewed(BaseModel):
    id: str
    name: str
    subject: str
    html_body: str
    text_body: str
    template_variables: dict[str, Any]
    tags: list[str]
    last_updated: str


class TemplateViewEnvelope(BaseModel):
    request_id: str
    data: TemplateViewed


class TemplateFound(BaseModel):
    id: str
    name: str
    subject: str
    tags: list[str]
    last_updated: str


class TemplateSearchResult(BaseModel):
    templates: list[TemplateFound]
    total_count: int
    continue_token: str | None


class TemplateSearchEnvelope(BaseModel):
    request_id: str
    data: TemplateSearchResult


class TemplateDeletedEnvelope(BaseModel):
    request_id: str
    data: str
