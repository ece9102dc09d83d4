"""Languages of human-readable messages: gettext catalogs, picked by ``Accept-Language``.

Catalogs are ``locale/<lang>/LC_MESSAGES/mailgate.po`` in the package, read with Babel and
compiled in memory on first use (no build step). Messages are English msgids; English needs
no catalog. Every msgid literal in the code is marked with :func:`N_` so that
``pybabel extract`` finds it (see README); a test checks that each has a translation.

Messages kept in the database for later readers (a provider's status reason, a test job's
error) are stored untranslated with :func:`stored_message` and said in each reader's
language with :func:`translate_stored`.
"""

from __future__ import annotations

import gettext
import io
import json
from collections.abc import Mapping
from functools import cache
from pathlib import Path
from typing import Any, Final

from babel import Locale, UnknownLocaleError
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po

__all__ = [
    "DEFAULT_LANGUAGE",
    "N_",
    "available_languages",
    "negotiate",
    "stored_message",
    "translate",
    "translate_stored",
]

DEFAULT_LANGUAGE: Final = "en"
LOCALE_DIR: Final = Path(__file__).parent / "locale"
DOMAIN: Final = "mailgate"


def N_(message: str) -> str:
    """Mark ``message`` as a msgid for extraction, without translating it (gettext_noop).

    Errors and issues carry English msgids and are translated only when a surface renders
    them for a request's language; ``N_`` is how ``pybabel extract`` finds them.
    """
    return message


@cache
def available_languages() -> tuple[str, ...]:
    found = sorted(
        path.parent.parent.name for path in LOCALE_DIR.glob(f"*/LC_MESSAGES/{DOMAIN}.po")
    )
    return (DEFAULT_LANGUAGE, *[lang for lang in found if lang != DEFAULT_LANGUAGE])


@cache
def _catalog(language: str) -> gettext.NullTranslations:
    path = LOCALE_DIR / language / "LC_MESSAGES" / f"{DOMAIN}.po"
    if language == DEFAULT_LANGUAGE or not path.exists():
        return gettext.NullTranslations()
    with path.open("rb") as handle:
        catalog = read_po(handle, locale=language, domain=DOMAIN)
    buffer = io.BytesIO()
    write_mo(buffer, catalog)
    buffer.seek(0)
    return gettext.GNUTranslations(buffer)


def negotiate(accept_language: str | None) -> str:
    """The best available language for an ``Accept-Language`` header value."""
    if not accept_language:
        return DEFAULT_LANGUAGE
    ranked: list[tuple[float, int, str]] = []
    for position, part in enumerate(accept_language.split(",")):
        tag, _, params = part.strip().partition(";")
        quality = 1.0
        if params.strip().startswith("q="):
            try:
                quality = float(params.strip()[2:])
            except ValueError:
                quality = 0.0
        if tag and quality > 0:
            ranked.append((-quality, position, tag.strip()))
    for _, _, tag in sorted(ranked):
        if tag == "*":
            return DEFAULT_LANGUAGE
        try:
            language = Locale.parse(tag, sep="-").language
        except (ValueError, UnknownLocaleError):
            continue
        if language in available_languages():
            return str(language)
    return DEFAULT_LANGUAGE


def translate(message: str, language: str, params: dict[str, Any] | None = None) -> str:
    """``message`` (an English msgid) in ``language``, with ``{name}`` params filled in."""
    text = _catalog(language).gettext(message)
    if not params:
        return text
    try:
        return text.format(**params)
    except (KeyError, IndexError, ValueError):
        return message.format(**params)


def stored_message(message: str, params: Mapping[str, Any] | None = None) -> str:
    """``message`` (a msgid) and its params as text to store, untranslated, for readers in
    any language; :func:`translate_stored` says it in the reader's."""
    return json.dumps(
        {"msgid": message, "params": dict(params or {})}, ensure_ascii=False, default=str
    )


def translate_stored(text: str | None, language: str) -> str | None:
    """What :func:`stored_message` kept, in ``language``. Any other text comes back as is."""
    if not text or not text.startswith("{"):
        return text
    try:
        kept = json.loads(text)
    except ValueError:
        return text
    if not isinstance(kept, dict) or not isinstance(kept.get("msgid"), str):
        return text
    params = kept.get("params")
    return translate(kept["msgid"], language, params if isinstance(params, dict) else None)
