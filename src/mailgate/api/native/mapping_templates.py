"""Native templates <-> domain. Pure functions and lookup tables."""

from __future__ import annotations

from typing import Any, Final

from pydantic import BaseModel

from mailgate.api.fields import iso
from mailgate.errors import Invalid, Issue
from mailgate.i18n import N_
from mailgate.services.template_rendering import RenderedTemplate
from mailgate.services.templates import TemplateChanges
from mailgate.store.models import Template

__all__ = ["TEMPLATE_CURSOR", "preview_out", "template_list_item", "template_out", "to_changes"]

TEMPLATE_CURSOR: Final = "tp"
# null clears these (to empty); the name cannot be cleared.
_EMPTY: Final[dict[str, Any]] = {
    "subject": "",
    "html_body": "",
    "text_body": "",
    "sample_data": {},
    "tags": [],
}


def to_changes(body: BaseModel, *, partial: bool) -> TemplateChanges:
    """A create (every field given) or PATCH (only the fields sent) body as domain changes."""
    sent = body.model_fields_set if partial else set(type(body).model_fields)
    values: dict[str, Any] = {}
    for name in sent:
        value = getattr(body, name)
        if value is None:
            if name == "name":
                if partial:
                    raise Invalid(Issue(name, N_("Must not be null."), "invalid_type"))
                continue
            value = _EMPTY[name]
        values[name] = value
    return TemplateChanges(**values)


def template_list_item(row: Template) -> dict[str, Any]:
    return {
        "id": row.public_id,
        "name": row.name,
        "subject": row.subject,
        "tags": list(row.tags or []),
        "created_at": iso(row.created_at),
        "updated_at": iso(row.updated_at),
    }


def template_out(row: Template) -> dict[str, Any]:
    return {
        **template_list_item(row),
        "html_body": row.html_body,
        "text_body": row.text_body,
        "sample_data": dict(row.sample_data or {}),
    }


def preview_out(rendered: RenderedTemplate) -> dict[str, Any]:
    return {"subject": rendered.subject, "html": rendered.html, "text": rendered.text}
