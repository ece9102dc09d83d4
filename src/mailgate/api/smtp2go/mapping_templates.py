"""SMTP2GO templates <-> domain: field names, shapes, search terms."""

from __future__ import annotations

from typing import Any, Final

from mailgate.api.smtp2go.schemas_templates import (
    TemplateAddRequest,
    TemplateEditRequest,
    TemplateLookup,
    TemplateSearchRequest,
)
from mailgate.errors import Invalid
from mailgate.i18n import N_
from mailgate.services.templates import TemplateChanges
from mailgate.store.models import Template

__all__ = [
    "ADD_NAMES",
    "EDIT_NAMES",
    "SEARCH_CURSOR",
    "found_out",
    "lookup_ref",
    "search_terms",
    "template_changes",
    "viewed_out",
    "written_out",
]

SEARCH_CURSOR: Final = "t"
# Domain field -> request field, for service errors.
ADD_NAMES: Final = {"public_id": "id", "name": "template_name", "sample_data": "template_variables"}
EDIT_NAMES: Final = {**ADD_NAMES, "public_id": "new_id"}


def lookup_ref(body: TemplateLookup) -> str:
    """The template named by ``id`` (SMTP2GO) or ``template_id`` (the seed document)."""
    ref = body.id or body.template_id
    if not ref:
        raise Invalid.field("id", N_("This field is required."), "required")
    return ref


def template_changes(body: TemplateAddRequest | TemplateEditRequest) -> TemplateChanges:
    if isinstance(body, TemplateAddRequest):
        if not body.template_name:
            raise Invalid.field("template_name", N_("This field is required."), "required")
        public_id = body.id
    else:
        public_id = body.new_id
    return TemplateChanges(
        public_id=public_id,
        name=body.template_name,
        subject=body.subject,
        html_body=body.html_body,
        text_body=body.text_body,
        sample_data=body.template_variables,
        tags=body.tags,
    )


def _last_updated(row: Template) -> str:
    return row.updated_at.strftime("%Y-%m-%d %H:%M:%S")


def written_out(row: Template) -> dict[str, Any]:
    """As ``add`` and ``edit`` answer: the name as ``template_name``."""
    return {
        "id": row.public_id,
        "template_name": row.name,
        "subject": row.subject,
        "html_body": row.html_body,
        "text_body": row.text_body,
        "template_variables": dict(row.sample_data or {}),
        "tags": list(row.tags or []),
        "last_updated": _last_updated(row),
    }


def viewed_out(row: Template) -> dict[str, Any]:
    """As ``view`` answers: the name as ``name``."""
    item = written_out(row)
    item["name"] = item.pop("template_name")
    return item


def found_out(row: Template) -> dict[str, Any]:
    return {
        "id": row.public_id,
        "name": row.name,
        "subject": row.subject,
        "tags": list(row.tags or []),
        "last_updated": _last_updated(row),
    }


def search_terms(body: TemplateSearchRequest) -> tuple[list[str], bool]:
    """The terms to look for and whether they match anywhere (fuzzy) or whole values. The
    seed's ``query`` is fuzzy; SMTP2GO's ``search_terms`` are exact unless ``fuzzy_search``."""
    terms = [t.strip() for t in body.search_terms or () if t.strip()]
    fuzzy = bool(body.fuzzy_search)
    if body.query and body.query.strip():
        terms.append(body.query.strip())
        fuzzy = True
    return terms, fuzzy
