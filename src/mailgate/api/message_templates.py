"""Templates named by a send (``template_id`` + ``template_data``), for every surface.

A send without any template opens no session and makes no query: the common path stays as
fast as it was.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, Final

from mailgate.api.context import AppContext
from mailgate.errors import Invalid
from mailgate.services.template_rendering import RenderedTemplate, parse_data
from mailgate.services.templates import render_for_send

__all__ = ["STAND_IN", "render_one", "render_templates", "template_request"]

# Stands in for a template that could not be rendered, so the rest of the request is still
# checked: it has every part, and says nothing.
STAND_IN: Final = RenderedTemplate(subject="", html="", text="")


def template_request(
    template_id: str | None, template_data: Mapping[str, Any] | str | None
) -> tuple[str, dict[str, Any]] | None:
    """A message's template and its variables, or None when it names no template.
    ``template_data`` may be JSON text (some SMTP2GO clients send it so)."""
    if template_id is None:
        return None
    return template_id, parse_data(template_data, "template_data")


async def render_templates(
    ctx: AppContext,
    account_id: int,
    wanted: Sequence[tuple[str, Mapping[str, Any]] | None],
) -> list[RenderedTemplate | None]:
    """Each message's template rendered (None where it names none); one query for all."""
    if all(item is None for item in wanted):
        return [None] * len(wanted)
    async with ctx.database.session() as session:
        return await render_for_send(session=session, account_id=account_id, wanted=wanted)


async def render_one(
    ctx: AppContext,
    account_id: int,
    wanted: tuple[str, Mapping[str, Any]] | None,
    check_rest: Callable[[RenderedTemplate], object],
) -> RenderedTemplate | None:
    """One message's template rendered. When that fails, the answer lists the request's other
    problems too (``check_rest`` builds the draft with a stand-in template), as every send
    reports all it finds at once."""
    try:
        [rendered] = await render_templates(ctx, account_id, [wanted])
    except Invalid as failed:
        issues = list(failed.issues)
        try:
            check_rest(STAND_IN)
        except Invalid as more:
            issues += more.issues
        raise Invalid(issues) from failed
    return rendered
