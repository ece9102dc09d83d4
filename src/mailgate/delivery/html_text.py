"""Readable plain text from an HTML body: the text alternative of an HTML-only message.

A small :class:`html.parser.HTMLParser` walk, no third-party parser:

- paragraphs, headings, lists, tables, block quotes and ``<hr>`` end a paragraph (a blank
  line); ``<div>``, ``<tr>``, ``<li>`` and the like end a line; ``<br>`` breaks a line;
- list items start with ``- `` (``1. `` in ordered lists), indented by nesting;
- a link becomes ``text (url)``, or just its text when the text already is the url;
- images say their ``alt`` text; ``<script>``, ``<style>``, ``<title>`` and ``<template>``
  say nothing;
- entities are unescaped; whitespace is collapsed except inside ``<pre>``; never more than
  one blank line in a row.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser
from typing import Final

__all__ = ["html_to_text"]

_PARAGRAPH: Final = frozenset(
    {"p", "h1", "h2", "h3", "h4", "h5", "h6", "blockquote", "pre", "table", "hr", "dl"}
    | {"ul", "ol"}  # a list nested in a list item only ends a line (see _LISTS)
)
_LINE: Final = frozenset(
    {"div", "tr", "li", "dt", "dd", "section", "article", "header", "footer", "nav", "aside"}
    | {"main", "figure", "figcaption", "address", "form", "fieldset", "caption", "center"}
)
_LISTS: Final = frozenset({"ul", "ol"})
_CELLS: Final = frozenset({"td", "th"})
_SILENT: Final = frozenset({"script", "style", "title", "template"})
_VOID: Final = frozenset({"br", "img", "hr", "input", "meta", "link", "area", "col", "wbr"})
_NOT_A_LINK: Final = re.compile(r"^(?:#|javascript:|cid:)", re.IGNORECASE)
_BLANK_LINES: Final = re.compile(r"\n{3,}")


class _TextWriter(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self._out: list[str] = []
        self._newlines = 0  # line breaks owed before the next text
        self._space = False  # a space owed before the next text (on the same line)
        self._silent = 0  # depth inside script/style/...
        self._pre = 0
        self._lists: list[int | None] = []  # None: <ul>; a counter: <ol>
        self._links: list[tuple[str | None, int]] = []  # (href, index of its first output)

    # --- output ---------------------------------------------------------------------

    def _emit(self, text: str) -> None:
        if self._out:
            if self._newlines:
                self._out.append("\n" * self._newlines)
            elif self._space:
                self._out.append(" ")
        self._newlines = 0
        self._space = False
        self._out.append(text)

    def _break(self, lines: int) -> None:
        self._newlines = max(self._newlines, lines)
        self._space = False

    def text(self) -> str:
        lines = [line.rstrip() for line in "".join(self._out).split("\n")]
        return _BLANK_LINES.sub("\n\n", "\n".join(lines)).strip("\n")

    # --- parser callbacks -----------------------------------------------------------

    def handle_data(self, data: str) -> None:
        if self._silent or not data:
            return
        if self._pre:
            self._emit(data)
            return
        words = data.split()  # any whitespace, &nbsp; included
        if not words:
            self._space = True
            return
        if data[0].isspace():
            self._space = True
        self._emit(" ".join(words))
        if data[-1].isspace():
            self._space = True

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _SILENT:
            self._silent += 1
        elif tag == "br":
            self._newlines = min(self._newlines + 1, 2) if self._out else 0
            self._space = False
        elif tag == "img":
            alt = " ".join((dict(attrs).get("alt") or "").split())
            if alt:
                self._emit(alt)
        elif tag == "a":
            self._links.append((dict(attrs).get("href"), len(self._out)))
        elif tag in _LISTS:
            self._break(1 if self._lists else 2)
            self._lists.append(1 if tag == "ol" else None)
        elif tag == "li":
            self._list_item()
        elif tag in _PARAGRAPH:
            self._break(2)
            if tag == "pre":
                self._pre += 1
        elif tag in _LINE:
            self._break(1)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.handle_starttag(tag, attrs)  # <br/>, <img/>: no end tag to act on
        if tag not in _VOID:
            self.handle_endtag(tag)

    def handle_endtag(self, tag: str) -> None:
        if tag in _SILENT:
            self._silent = max(0, self._silent - 1)
        elif tag == "a" and self._links:
            self._end_link(*self._links.pop())
        elif tag in _LISTS:
            if self._lists:
                self._lists.pop()
            self._break(1 if self._lists else 2)
        elif tag in _CELLS:
            self._space = not self._newlines
        elif tag in _PARAGRAPH:
            self._break(2)
            if tag == "pre":
                self._pre = max(0, self._pre - 1)
        elif tag in _LINE:
            self._break(1)

    # --- helpers --------------------------------------------------------------------

    def _list_item(self) -> None:
        self._break(1)
        depth = max(len(self._lists), 1)
        counter = self._lists[-1] if self._lists else None
        if counter is None:
            marker = "-"
        else:
            marker = f"{counter}."
            self._lists[-1] = counter + 1
        self._emit("  " * (depth - 1) + marker)
        self._space = True

    def _end_link(self, href: str | None, start: int) -> None:
        url = (href or "").strip()
        if not url or _NOT_A_LINK.match(url):
            return
        said = " ".join("".join(self._out[start:]).split())
        if said in (url, url.removeprefix("mailto:")):
            return
        self._space = bool(said) or self._space
        self._emit(f"({url})" if said else url)


def html_to_text(html: str) -> str:
    """A plain-text rendering of ``html`` for people to read (not a faithful conversion)."""
    writer = _TextWriter()
    writer.feed(html)
    writer.close()
    return writer.text()
