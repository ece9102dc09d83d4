"""Native ``/api/v1/templates`` request and response models."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field, StringConstraints

from mailgate.api.fields import RequiredText, StrictModel
from mailgate.api.native.schemas import Meta, Pagination
from mailgate.services.template_rendering import MAX_TEMPLATE_CHARS
from mailgate.services.templates import MAX_TAG, MAX_TAGS

__all__ = [
    "TemplateCreate",
    "TemplateDeletedEnvelope",
    "TemplateEnvelope",
    "TemplateListEnvelope",
    "TemplatePreviewEnvelope",
    "TemplatePreviewRequest",
    "TemplateUpdate",
]

Source = Annotated[str, StringConstraints(max_length=MAX_TEMPLATE_CHARS)]
TemplateTag = Annotated[str, StringConstraints(min_length=1, max_length=MAX_TAG)]
Tags = Annotated[list[TemplateTag], Field(max_length=MAX_TAGS)]
SOURCE_HELP = "Jinja2 ({{ name }}), sandboxed; a missing variable renders empty."


class TemplateCreate(StrictModel):
    name: RequiredText = Field(description="Unique within the account.")
    subject: Source | None = Field(default=None, description=SOURCE_HELP + " One line.")
    html_body: Source | None = Field(default=None, description=SOURCE_HELP + " Autoescaped.")
    text_body: Source | None = Field(default=None, description=SOURCE_HELP)
    sample_data: dict[str, Any] | None = Field(
        default=None, description="Variables a preview renders with when it is given none."
    )
    tags: Tags | None = None


class TemplateUpdate(StrictModel):
    name: RequiredText | None = None
    subject: Source | None = None
    html_body: Source | None = None
    text_body: Source | None = None
    sample_data: dict[str, Any] | None = None
    tags: Tags | None = None


class TemplatePreviewRequest(StrictModel):
    data: dict[str, Any] | None = Field(
        default=None, description="Variables to render with; omitted: the sample data."
    )


class TemplateListItem(BaseModel):
    id: str
    name: str
    subject: str
    tags: list[str]
    created_at: str
    updated_at: str


class TemplateItem(TemplateListItem):
    html_body: str
    text_body: str
    sample_data: dict[str, Any]


class TemplateEnvelope(BaseModel):
    ok: Literal[True]
    meta: Meta
    data: TemplateItem


class TemplateListEnvelope(BaseModel):
    ok: Literal[True]
    meta: Meta
    data: list[TemplateListItem]
    pagination: Pagination


class TemplateDeleted(BaseModel):
    deleted: bool
    id: str


class TemplateDeletedEnvelope(BaseModel):
    ok: Literal[True]
    meta: Meta
    data: TemplateDeleted


class TemplatePreview(BaseModel):
    subject: str
    html: str | None
    text: str | None


class TemplatePreviewEnvelope(BaseModel):
    ok: Literal[True]
    meta: Meta
    data: TemplatePreview
