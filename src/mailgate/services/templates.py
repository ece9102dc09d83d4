"""Message templates of an account: create, change, delete, list, search, preview, and the
rendering a send with ``template_id`` + ``template_data`` goes through.

A template's id is its ``public_id``, unique within its account (generated ``tmpl_...``, or
chosen by an SMTP2GO caller); its name is unique within the account too. Sources are checked
(size, syntax with the line) on every write, so a stored template always compiles; compiled
templates are cached by (row id, ``updated_at``), see
:func:`mailgate.services.template_rendering.compiled`.
"""

from __future__ import annotations

import asyncio
import json
import re
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from typing import Any, Final

from sqlalchemy import Text, cast, func, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from mailgate.errors import Conflict, Invalid, Issue, NotFound
from mailgate.i18n import N_
from mailgate.services.template_rendering import (
    RenderedTemplate,
    TemplateParts,
    check_parts,
    compiled,
    render,
)
from mailgate.store.models import Template, utcnow
from mailgate.validation import check_no_control_chars

__all__ = [
    "MAX_NAME",
    "MAX_SAMPLE_DATA_CHARS",
    "MAX_TAGS",
    "PUBLIC_ID_PREFIX",
    "TemplateChanges",
    "TemplatePage",
    "count_templates",
    "create_template",
    "delete_template",
    "fill_from_template",
    "get_template",
    "list_templates",
    "preview_template",
    "render_for_send",
    "render_template",
    "templates_by_ref",
    "update_template",
]

PUBLIC_ID_PREFIX: Final = "tmpl_"
MAX_NAME: Final = 255
MAX_TAGS: Final = 20
MAX_TAG: Final = 64
MAX_SAMPLE_DATA_CHARS: Final = 65_536
# Ids callers choose (SMTP2GO's ``id``): 5 to 40 of these characters, case-sensitive.
_CHOSEN_ID: Final = re.compile(r"^[A-Za-z0-9_.-]{5,40}$")


@dataclass(frozen=True)
class TemplateChanges:
    """Fields to set; a field left None is not changed (on create: empty)."""

    public_id: str | None = None
    name: str | None = None
    subject: str | None = None
    html_body: str | None = None
    text_body: str | None = None
    sample_data: Mapping[str, Any] | None = None
    tags: Sequence[str] | None = None

    def sent(self) -> dict[str, Any]:
        given = {f.name: getattr(self, f.name) for f in fields(self)}
        return {name: value for name, value in given.items() if value is not None}


@dataclass(frozen=True)
class TemplatePage:
    items: list[Template]
    has_more: bool


def _too_long(name: str, limit: int) -> Issue:
    return Issue(
        name, N_("Must be at most {max_length} characters long."), "too_long", {"max_length": limit}
    )


def _check(values: Mapping[str, Any]) -> dict[str, Any]:
    """The changes normalised, or Invalid listing every problem."""
    issues: list[Issue] = []
    checked = dict(values)
    if "public_id" in values and not _CHOSEN_ID.match(values["public_id"]):
        issues.append(
            Issue(
                "public_id",
                N_("Must be 5 to 40 letters, digits, dots, dashes or underscores."),
            )
        )
    if "name" in values:
        name = values["name"].strip()
        if not name:
            issues.append(Issue("name", N_("This field is required."), "required"))
        elif len(name) > MAX_NAME:
            issues.append(_too_long("name", MAX_NAME))
        else:
            try:
                checked["name"] = check_no_control_chars(name)
            except ValueError as exc:
                issues.append(Issue("name", str(exc)))
    if "sample_data" in values:
        try:
            size = len(json.dumps(values["sample_data"], ensure_ascii=False))
        except (TypeError, ValueError, RecursionError):
            size = MAX_SAMPLE_DATA_CHARS + 1
        if size > MAX_SAMPLE_DATA_CHARS:
            issues.append(_too_long("sample_data", MAX_SAMPLE_DATA_CHARS))
        checked["sample_data"] = dict(values["sample_data"])
    if "tags" in values:
        tags = [str(tag).strip() for tag in values["tags"]]
        if len(tags) > MAX_TAGS:
            issues.append(
                Issue("tags", N_("Must list at most {max} items."), "too_many", {"max": MAX_TAGS})
            )
        for index, tag in enumerate(tags):
            if not tag or len(tag) > MAX_TAG or not tag.isprintable():
                issues.append(Issue(f"tags.{index}", N_("Must be 1 to 64 printable characters.")))
        checked["tags"] = list(dict.fromkeys(tags))
    if issues:
        raise Invalid(issues)
    return checked


def _parts(row: Template) -> TemplateParts:
    return TemplateParts(subject=row.subject, html=row.html_body, text=row.text_body)


def _name_taken(name: str) -> Conflict:
    return Conflict(N_("A template named {name} exists already."), name=name[:255])


def _id_taken(public_id: str) -> Conflict:
    return Conflict(N_("A template with id {id} exists already."), id=public_id[:64])


async def _ensure_free(
    session: AsyncSession, account_id: int, values: Mapping[str, Any], row_id: int | None
) -> None:
    for column, error in (
        ("name", _name_taken),
        ("public_id", _id_taken),
    ):
        if column not in values:
            continue
        query = select(Template.id).where(
            Template.account_id == account_id, getattr(Template, column) == values[column]
        )
        if row_id is not None:
            query = query.where(Template.id != row_id)
        if (await session.execute(query.limit(1))).first() is not None:
            raise error(values[column])


async def _commit(session: AsyncSession, values: Mapping[str, Any]) -> None:
    try:
        await session.commit()
    except IntegrityError as exc:  # taken by a concurrent request between check and write
        await session.rollback()
        if "name" in values:
            raise _name_taken(values["name"]) from exc
        raise _id_taken(str(values.get("public_id", ""))) from exc


async def create_template(
    *, session: AsyncSession, account_id: int, changes: TemplateChanges
) -> Template:
    values = _check(changes.sent())
    if "name" not in values:
        raise Invalid.field("name", N_("This field is required."), "required")
    row = Template(
        public_id=values.get("public_id") or PUBLIC_ID_PREFIX + secrets.token_hex(12),
        account_id=account_id,
        name=values["name"],
        subject=values.get("subject", ""),
        html_body=values.get("html_body", ""),
        text_body=values.get("text_body", ""),
        sample_data=values.get("sample_data", {}),
        tags=values.get("tags", []),
    )
    check_parts(_parts(row))
    await _ensure_free(session, account_id, values, None)
    session.add(row)
    await _commit(session, values)
    return row


async def update_template(
    *, session: AsyncSession, row: Template, changes: TemplateChanges
) -> Template:
    values = _check(changes.sent())
    if not values:
        return row
    parts = TemplateParts(
        subject=values.get("subject", row.subject),
        html=values.get("html_body", row.html_body),
        text=values.get("text_body", row.text_body),
    )
    check_parts(parts)
    await _ensure_free(session, row.account_id, values, row.id)
    for name, value in values.items():
        setattr(row, name, value)
    row.updated_at = utcnow()
    await _commit(session, values)
    return row


async def delete_template(*, session: AsyncSession, row: Template) -> None:
    await session.delete(row)
    await session.commit()


def _not_found(ref: str) -> NotFound:
    return NotFound(N_("No template with id {id}."), id=ref[:64])


async def get_template(*, session: AsyncSession, account_id: int, ref: str) -> Template:
    text = ref.strip()
    query = select(Template).where(Template.account_id == account_id, Template.public_id == text)
    row = (await session.execute(query)).scalar_one_or_none()
    if row is None:
        raise _not_found(text)
    return row


async def templates_by_ref(
    *, session: AsyncSession, account_id: int, refs: Sequence[str]
) -> dict[str, Template]:
    """The templates of this account with these public ids (one query); unknown ones absent."""
    wanted = sorted({ref.strip() for ref in refs})
    if not wanted:
        return {}
    query = select(Template).where(
        Template.account_id == account_id, Template.public_id.in_(wanted)
    )
    return {row.public_id: row for row in (await session.execute(query)).scalars()}


def _like(column: Any, needle: str) -> Any:
    return func.lower(column).contains(needle.lower(), autoescape=True)


def _matches(term: str, *, exact: bool) -> Any:
    tag_text = cast(Template.tags, Text)
    if exact:  # a whole value; a tag as json.dumps writes it inside the list's JSON text
        return or_(
            func.lower(Template.name) == term.lower(),
            Template.public_id == term,
            func.lower(Template.subject) == term.lower(),
            tag_text.contains(json.dumps(term), autoescape=True),
        )
    return or_(
        _like(Template.name, term),
        _like(Template.public_id, term),
        _like(Template.subject, term),
        _like(tag_text, term),
    )


def _where(account_id: int, terms: Sequence[str], tags: Sequence[str], exact: bool) -> list[Any]:
    clauses: list[Any] = [Template.account_id == account_id]
    if terms:
        clauses.append(or_(*(_matches(term, exact=exact) for term in terms)))
    if tags:
        tag_text = cast(Template.tags, Text)
        clauses.append(or_(*(tag_text.contains(json.dumps(tag), autoescape=True) for tag in tags)))
    return clauses


async def list_templates(
    *,
    session: AsyncSession,
    account_id: int,
    limit: int | None,
    after_id: int | None = None,
    terms: Sequence[str] = (),
    tags: Sequence[str] = (),
    exact: bool = False,
    newest_first: bool = False,
) -> TemplatePage:
    """Templates in the order they were made (or newest first), on the (account, id) index.
    ``terms``: any of them in the name, id, subject or a tag (case-insensitive; ``exact``:
    the whole value); ``tags``: any of these tags. ``after_id`` is a cursor; ``limit=None``:
    all."""
    query = select(Template).where(*_where(account_id, terms, tags, exact))
    if after_id is not None:
        query = query.where(Template.id < after_id if newest_first else Template.id > after_id)
    query = query.order_by(Template.id.desc() if newest_first else Template.id)
    if limit is None:
        return TemplatePage(items=list((await session.execute(query)).scalars()), has_more=False)
    rows = list((await session.execute(query.limit(limit + 1))).scalars())
    return TemplatePage(items=rows[:limit], has_more=len(rows) > limit)


async def count_templates(
    *,
    session: AsyncSession,
    account_id: int,
    terms: Sequence[str] = (),
    tags: Sequence[str] = (),
    exact: bool = False,
) -> int:
    where = _where(account_id, terms, tags, exact)
    query = select(func.count()).select_from(Template).where(*where)
    return int((await session.execute(query)).scalar_one())


def render_template(row: Template, data: Mapping[str, Any]) -> RenderedTemplate:
    """``row`` rendered with ``data``; compiled once per version of the template."""
    return render(compiled((row.id, row.updated_at), lambda: _parts(row)), data)


async def preview_template(row: Template, data: Mapping[str, Any] | None) -> RenderedTemplate:
    """A preview: with ``data`` when given, else with the template's sample data (rendered
    in a worker thread, as sends are)."""
    return await asyncio.to_thread(render_template, row, row.sample_data if data is None else data)


async def render_for_send(
    *,
    session: AsyncSession,
    account_id: int,
    wanted: Sequence[tuple[str, Mapping[str, Any]] | None],
) -> list[RenderedTemplate | None]:
    """For each message of a send (``None``: no template), its template rendered with its
    data. Unknown ids are Invalid on ``template_id`` (``<index>.template_id`` in a batch);
    render errors name ``template_data`` the same way. Rendering runs in a worker thread:
    a heavy template (bounded, see template_rendering) does not stall other requests."""
    refs = [item[0] for item in wanted if item is not None]
    found = await templates_by_ref(session=session, account_id=account_id, refs=refs)
    return await asyncio.to_thread(_render_each, found, wanted)


def _render_each(
    found: Mapping[str, Template], wanted: Sequence[tuple[str, Mapping[str, Any]] | None]
) -> list[RenderedTemplate | None]:
    batch = len(wanted) > 1
    issues: list[Issue] = []
    rendered: list[RenderedTemplate | None] = []
    for index, item in enumerate(wanted):
        rendered.append(None)
        if item is None:
            continue
        prefix = f"{index}." if batch else ""
        ref, data = item
        row = found.get(ref.strip())
        if row is None:
            issues.append(
                Issue(
                    f"{prefix}template_id",
                    N_("No template with id {id}."),
                    "not_found",
                    {"id": ref[:64]},
                )
            )
            continue
        try:
            rendered[-1] = render_template(row, data)
        except Invalid as exc:  # the stored template compiles: the data made it fail
            issues.extend(
                Issue(f"{prefix}template_data", i.message, i.code, i.params) for i in exc.issues
            )
    if issues:
        raise Invalid(issues)
    return rendered


def fill_from_template(
    subject: str | None,
    html: str | None,
    text: str | None,
    template: RenderedTemplate | None,
) -> tuple[str | None, str | None, str | None]:
    """A send's subject, HTML and text: what the request gives, else the template's part."""
    if template is None:
        return subject, html, text
    return (
        template.subject if subject is None else subject,
        template.html if html is None else html,
        template.text if text is None else text,
    )
