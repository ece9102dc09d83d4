"""Rendering templates: Jinja2's immutable sandbox with every resource bounded.

Template authors and the data they render are both untrusted. The sandbox already refuses
internals (``__class__``, ``mro``, ``__globals__``) and changing lists and dicts; on top of it:

- a step budget per render: a loop iteration costs a step, a call (macros included) ten,
  weighing a container one per item, so nested loops and exponential macro recursion stop
  with an error within a fraction of a second, not a hung worker;
- sizes: what ``*``, ``+``, ``~`` and ``**`` would build is weighed *before* it is built
  (a container by everything it holds, ``[big, big]`` twice), and so are list, tuple and
  dict literals and what calls return; only filters and methods that cannot grow their
  input are offered (``replace`` is checked); rendered output is counted while it streams:
  nothing allocates far past :data:`MAX_RENDERED_CHARS`;
- no includes, imports or inheritance (there is nothing to load them from), and no
  ``namespace()`` (state carried across loop iterations is how a value doubles in a loop);
- missing variables render empty, also nested (``{{ user.name }}`` without ``user``);
- HTML is autoescaped in the HTML part only; the subject is one line: CR and LF (and other
  control characters) become spaces, so rendered data can never start a new header.

Errors at compile time name the line (``Invalid`` on the part's field); errors while rendering
are ``Invalid`` too, never a 500 and never a MemoryError.
"""

from __future__ import annotations

import contextvars
import json
import re
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from jinja2 import ChainableUndefined, Undefined, nodes, pass_eval_context
from jinja2.exceptions import SecurityError, TemplateError, TemplateSyntaxError
from jinja2.filters import do_replace
from jinja2.nodes import EvalContext
from jinja2.runtime import Context, markup_join, str_join
from jinja2.sandbox import ImmutableSandboxedEnvironment

from mailgate.errors import Invalid, Issue
from mailgate.i18n import N_

__all__ = [
    "MAX_RENDERED_CHARS",
    "MAX_STEPS",
    "MAX_TEMPLATE_CHARS",
    "CompiledTemplate",
    "RenderedTemplate",
    "TemplateParts",
    "check_parts",
    "compile_parts",
    "compiled",
    "parse_data",
    "render",
]

MAX_TEMPLATE_CHARS: Final = 512_000  # per part, as stored
MAX_RENDERED_CHARS: Final = 4_000_000  # per part, as rendered (the message cap applies after)
MAX_STEPS: Final = 200_000  # loop iterations per render; a call costs CALL_STEPS
CALL_STEPS: Final = 10  # a call (a macro's above all) costs about ten loop iterations
MAX_INT_BITS: Final = 4096  # no number computed may be wider
SUBJECT_FIELD: Final = "subject"
HTML_FIELD: Final = "html_body"
TEXT_FIELD: Final = "text_body"
_CACHE_SIZE: Final = 512
_CONTROL: Final = re.compile(r"[\x00-\x1f\x7f]+")

# Methods a template may call on its data; anything else callable is refused. Each of these
# returns something no bigger than its input.
_SAFE_METHODS: Final = frozenset(
    {
        "capitalize",
        "endswith",
        "get",
        "items",
        "keys",
        "lower",
        "lstrip",
        "rstrip",
        "split",
        "startswith",
        "strip",
        "title",
        "upper",
        "values",
    }
)
# Filters whose output is bounded by their input (or a fixed size); the rest are removed.
_SAFE_FILTERS: Final = frozenset(
    {
        "abs",
        "attr",
        "capitalize",
        "count",
        "d",
        "default",
        "dictsort",
        "e",
        "escape",
        "first",
        "float",
        "forceescape",
        "groupby",
        "int",
        "items",
        "join",
        "last",
        "length",
        "list",
        "lower",
        "map",
        "max",
        "min",
        "reject",
        "rejectattr",
        "reverse",
        "round",
        "safe",
        "select",
        "selectattr",
        "sort",
        "string",
        "striptags",
        "sum",
        "title",
        "trim",
        "truncate",
        "unique",
        "upper",
        "urlencode",
        "wordcount",
    }
)
_ITERATE: Final = "mailgate_iterate"  # internal filters the compiler pass inserts
_CONCAT: Final = "mailgate_concat"
_BOUNDED: Final = "mailgate_bounded"
_MEMO_FROM: Final = 256  # containers weighing more are remembered for the render


class _Exhausted(Exception):
    """A render went over a bound; ``message`` says which (a msgid)."""

    def __init__(self, message: str, **params: Any) -> None:
        super().__init__(message)
        self.message = message
        self.params = params


class _Budget:
    def __init__(self) -> None:
        self.steps = MAX_STEPS
        # id -> (value, weight) of the containers weighed in this render; the value is kept
        # so that its id cannot be reused. Containers are immutable in this sandbox.
        self.weights: dict[int, tuple[Any, int]] = {}

    def spend(self, steps: int = 1) -> None:
        self.steps -= steps
        if self.steps < 0:
            raise _Exhausted(
                N_("The template does too much work (over {limit} steps)."), limit=MAX_STEPS
            )


_budget: contextvars.ContextVar[_Budget] = contextvars.ContextVar("template_budget")


def _spend(steps: int = 1) -> None:
    _budget.get().spend(steps)


def _too_large() -> _Exhausted:
    return _Exhausted(
        N_("The rendered template is too large (over {limit} characters)."),
        limit=MAX_RENDERED_CHARS,
    )


def _weight(value: Any) -> int:
    """About how many characters ``value`` turns into as text: strings by their length,
    containers by everything they hold, a container held twice counted twice (that is how
    ``[big, big, big]`` would print); big containers are walked once per render."""
    if isinstance(value, str | bytes):
        return len(value)
    if not isinstance(value, list | tuple | dict):
        return max(1, value.bit_length() // 3) if type(value) is int else 1
    budget = _budget.get()
    known = budget.weights.get(id(value))
    if known is not None and known[0] is value:
        return known[1]
    budget.spend(len(value))  # weighing is work too: one step per item
    children = (*value.keys(), *value.values()) if isinstance(value, dict) else value
    total = 1
    for child in children:
        kind = type(child)
        if kind is str:
            total += len(child)
        elif kind is int:
            total += 1 + child.bit_length() // 3
        elif kind is float or kind is bool or child is None:
            total += 1
        else:
            total += _weight(child)
        if total > MAX_RENDERED_CHARS:
            raise _too_large()
    if total > _MEMO_FROM:  # small ones are cheaper to weigh again than to remember
        budget.weights[id(value)] = (value, total)
    return total


def _check_size(value: Any) -> Any:
    if isinstance(value, int) and value.bit_length() > MAX_INT_BITS:
        raise _Exhausted(N_("A number in the template is too large."))
    if _weight(value) > MAX_RENDERED_CHARS:
        raise _too_large()
    return value


def _bounded_range(*args: int) -> Iterator[int]:
    numbers = range(*args)
    if len(numbers) > MAX_STEPS:
        raise _Exhausted(
            N_("The template does too much work (over {limit} steps)."), limit=MAX_STEPS
        )
    for number in numbers:
        _spend()
        yield number


def _iterate(value: Any) -> Iterator[Any]:
    """Every ``for`` loop's iterable goes through this: one step per item."""
    for item in value:
        _spend()
        yield item


@pass_eval_context
def _concat(eval_ctx: EvalContext, parts: list[Any]) -> str:
    """``a ~ b``: the size is checked before the string is built."""
    if sum(_weight(part) for part in parts) > MAX_RENDERED_CHARS:
        raise _too_large()
    return markup_join(parts) if eval_ctx.autoescape else str_join(parts)


@pass_eval_context
def _replace(
    eval_ctx: EvalContext, value: Any, old: Any, new: Any, count: int | None = None
) -> str:
    """Jinja's ``replace``, refused before it builds an oversized string."""
    text, old_text, new_text = str(value), str(old), str(new)
    if old_text == "":
        grows = (len(text) + 1) * len(new_text)
    else:
        grows = text.count(old_text) * max(0, len(new_text) - len(old_text))
    if len(text) + grows > MAX_RENDERED_CHARS:
        raise _too_large()
    return do_replace(eval_ctx, value, old, new, count)


def _binop_size(operator_name: str, left: Any, right: Any) -> None:
    """Refuse before computing what would be too big."""
    if operator_name == "*":
        for sequence, times in ((left, right), (right, left)):
            if (
                isinstance(sequence, str | list | tuple)
                and isinstance(times, int)
                and _weight(sequence) * max(times, 0) > MAX_RENDERED_CHARS
            ):
                raise _too_large()
        if (
            isinstance(left, int)
            and isinstance(right, int)
            and left.bit_length() + right.bit_length() > MAX_INT_BITS
        ):
            raise _Exhausted(N_("A number in the template is too large."))
    elif operator_name == "**":
        if (
            isinstance(left, int)
            and isinstance(right, int)
            and abs(left) > 1
            and right * left.bit_length() > MAX_INT_BITS
        ):
            raise _Exhausted(N_("A number in the template is too large."))
    elif operator_name == "+":
        if _weight(left) + _weight(right) > MAX_RENDERED_CHARS:
            raise _too_large()
    elif operator_name == "%" and isinstance(left, str):
        raise SecurityError("string formatting with % is not allowed")


class _Sandbox(ImmutableSandboxedEnvironment):
    """The immutable sandbox, with budgets and size checks (see the module docstring)."""

    intercepted_binops = frozenset({"*", "**", "+", "%"})

    def __init__(self, *, autoescape: bool) -> None:
        super().__init__(
            autoescape=autoescape,
            undefined=ChainableUndefined,
            keep_trailing_newline=True,
            auto_reload=False,
            cache_size=0,  # compiled templates are cached by CompiledTemplate's owner
        )
        self.filters = {name: f for name, f in self.filters.items() if name in _SAFE_FILTERS}
        self.filters["replace"] = _replace
        self.filters[_ITERATE] = _iterate
        self.filters[_CONCAT] = _concat
        self.filters[_BOUNDED] = _check_size
        # No ``namespace``: state carried across loop iterations is how a template doubles
        # a value in a loop; without it, every value is built by a checked step.
        self.globals = {"range": _bounded_range, "dict": dict}

    def getattr(self, obj: Any, attribute: str) -> Any:
        # Data first: ``{{ order.items }}`` is the order's items, not dict.items.
        if isinstance(obj, Mapping) and attribute in obj:
            return obj[attribute]
        return super().getattr(obj, attribute)

    def wrap_str_format(self, value: Any) -> None:
        # ``str.format`` could pad to any width: refused like every method not listed.
        return None

    def is_safe_attribute(self, obj: Any, attr: str, value: Any) -> bool:
        if isinstance(value, Undefined):  # a missing variable's attribute: empty, chained
            return not attr.startswith("_")
        if callable(value) and attr not in _SAFE_METHODS:
            return False
        return bool(super().is_safe_attribute(obj, attr, value))

    def unsafe_undefined(self, obj: Any, attribute: str) -> Any:
        # Refuse loudly: a probe of internals is an error, not an empty string.
        raise SecurityError(f"access to attribute {attribute!r} is not allowed")

    def call_binop(self, context: Context, operator_name: str, left: Any, right: Any) -> Any:
        _binop_size(operator_name, left, right)
        return _check_size(super().call_binop(context, operator_name, left, right))

    def call(
        __self,  # Jinja's own signature: ``self`` may be a keyword argument of a call
        __context: Context,
        __obj: Any,
        *args: Any,
        **kwargs: Any,
    ) -> Any:
        _spend(CALL_STEPS)
        return _check_size(super().call(__context, __obj, *args, **kwargs))

    def _parse(self, source: str, name: str | None, filename: str | None) -> nodes.Template:
        tree = super()._parse(source, name, filename)
        _guard(tree)
        return tree


def _guard(tree: nodes.Template) -> None:
    """Refuse what cannot work here and route loops and ``~`` through the checks above."""
    for node in tree.find_all((nodes.Extends, nodes.Include, nodes.Import, nodes.FromImport)):
        raise TemplateSyntaxError(
            "includes, imports and template inheritance are not supported", node.lineno
        )
    for loop in tree.find_all(nodes.For):
        loop.iter = nodes.Filter(loop.iter, _ITERATE, [], [], None, None, lineno=loop.lineno)
    for parent in tree.find_all(nodes.Node):
        if isinstance(parent, nodes.Filter) and parent.name in (_BOUNDED, _CONCAT):
            continue  # made here: its list is checked by the filter itself
        for field in parent.fields:
            child = getattr(parent, field, None)
            if isinstance(child, nodes.Node):
                setattr(parent, field, _checked(child))
            elif isinstance(child, list):
                setattr(
                    parent, field, [_checked(c) if isinstance(c, nodes.Node) else c for c in child]
                )


def _checked(node: nodes.Node) -> nodes.Node:
    """``~`` joins through :func:`_concat`; list, tuple and dict literals are weighed as they
    are built (``[a, a, a]`` of a big ``a``)."""
    if isinstance(node, nodes.Concat):
        parts = nodes.List(node.nodes, lineno=node.lineno)
        return nodes.Filter(parts, _CONCAT, [], [], None, None, lineno=node.lineno)
    literal = isinstance(node, nodes.List | nodes.Dict) or (
        isinstance(node, nodes.Tuple) and node.ctx == "load"
    )
    if literal and not _static(node):
        return nodes.Filter(node, _BOUNDED, [], [], None, None, lineno=node.lineno)
    return node


def _static(node: nodes.Node) -> bool:
    """Constants, and literals of constants: their size is the template's own."""
    if isinstance(node, nodes.Const):
        return True
    if isinstance(node, nodes.List | nodes.Tuple | nodes.Dict):
        return all(_static(item) for item in node.items)
    if isinstance(node, nodes.Pair):
        return _static(node.key) and _static(node.value)
    return False


_HTML = _Sandbox(autoescape=True)
_PLAIN = _Sandbox(autoescape=False)


@dataclass(frozen=True)
class TemplateParts:
    """A template's sources; an empty part is a part the template does not have."""

    subject: str
    html: str
    text: str


@dataclass(frozen=True)
class RenderedTemplate:
    subject: str
    html: str | None
    text: str | None


@dataclass(frozen=True)
class CompiledTemplate:
    subject: Any
    html: Any
    text: Any


def _compile_one(environment: _Sandbox, source: str, field: str) -> Any:
    if len(source) > MAX_TEMPLATE_CHARS:
        raise Invalid.field(
            field,
            N_("Must be at most {max_length} characters long."),
            "too_long",
            max_length=MAX_TEMPLATE_CHARS,
        )
    if not source:
        return None
    try:
        return environment.from_string(source)
    except TemplateSyntaxError as exc:
        raise Invalid.field(
            field,
            N_("Template syntax error on line {line}: {detail}"),
            "template_syntax",
            line=exc.lineno,
            detail=exc.message or "",
        ) from exc
    except (TemplateError, RecursionError, MemoryError) as exc:
        raise Invalid.field(
            field,
            N_("Template syntax error on line {line}: {detail}"),
            "template_syntax",
            line=1,
            detail=str(exc)[:200],
        ) from exc


def compile_parts(parts: TemplateParts) -> CompiledTemplate:
    """Every part compiled; Invalid naming each part that does not compile (and its line)."""
    issues: list[Issue] = []
    compiled_parts: dict[str, Any] = {}
    for field, environment, source in (
        (SUBJECT_FIELD, _PLAIN, parts.subject),
        (HTML_FIELD, _HTML, parts.html),
        (TEXT_FIELD, _PLAIN, parts.text),
    ):
        try:
            compiled_parts[field] = _compile_one(environment, source, field)
        except Invalid as exc:
            issues.extend(exc.issues)
    if issues:
        raise Invalid(issues)
    return CompiledTemplate(
        subject=compiled_parts[SUBJECT_FIELD],
        html=compiled_parts[HTML_FIELD],
        text=compiled_parts[TEXT_FIELD],
    )


def check_parts(parts: TemplateParts) -> None:
    """Raise Invalid when a part is too long or does not compile (create and edit)."""
    compile_parts(parts)


_compiled: OrderedDict[tuple[int, datetime], CompiledTemplate] = OrderedDict()
_compiled_lock = threading.Lock()  # renders run in worker threads


def compiled(key: tuple[int, datetime], parts: Callable[[], TemplateParts]) -> CompiledTemplate:
    """The compiled template for ``key`` (a template's row id and ``updated_at``): parsed once,
    then reused until the template changes. ``parts`` is only read on a miss."""
    with _compiled_lock:
        found = _compiled.get(key)
        if found is not None:
            _compiled.move_to_end(key)
            return found
    made = compile_parts(parts())  # outside the lock: two misses at once both compile, fine
    with _compiled_lock:
        _compiled[key] = made
        if len(_compiled) > _CACHE_SIZE:
            _compiled.popitem(last=False)
    return made


def _stream(template: Any, data: Mapping[str, Any], field: str) -> str:
    chunks: list[str] = []
    total = 0
    try:
        for chunk in template.generate(data):
            total += len(chunk)
            if total > MAX_RENDERED_CHARS:
                raise _too_large()
            chunks.append(chunk)
    except _Exhausted as exc:
        raise Invalid.field(field, exc.message, "template_limit", **exc.params) from None
    except SecurityError as exc:
        raise Invalid.field(
            field,
            N_("The template is not allowed to do this: {detail}"),
            "template_security",
            detail=str(exc)[:200],
        ) from None
    except RecursionError:
        raise Invalid.field(
            field, N_("The template recurses too deeply."), "template_limit"
        ) from None
    except MemoryError:  # a last resort: every size is checked before it is built
        raise _as_invalid(field, _too_large()) from None
    except Exception as exc:  # anything else the template did wrong: say what, never a 500
        raise Invalid.field(
            field,
            N_("The template failed to render: {detail}"),
            "template_render",
            detail=f"{type(exc).__name__}: {str(exc)[:200]}",
        ) from None
    return "".join(chunks)


def _as_invalid(field: str, exc: _Exhausted) -> Invalid:
    return Invalid.field(field, exc.message, "template_limit", **exc.params)


def _one_line(text: str) -> str:
    return _CONTROL.sub(" ", text).strip()


def render(template: CompiledTemplate, data: Mapping[str, Any]) -> RenderedTemplate:
    """All three parts rendered with ``data``; each part with a fresh step budget."""
    values = dict(data)
    rendered: dict[str, str | None] = {}
    for field, part in (
        (SUBJECT_FIELD, template.subject),
        (HTML_FIELD, template.html),
        (TEXT_FIELD, template.text),
    ):
        if part is None:
            rendered[field] = None
            continue
        token = _budget.set(_Budget())
        try:
            rendered[field] = _stream(part, values, field)
        finally:
            _budget.reset(token)
    return RenderedTemplate(
        subject=_one_line(rendered[SUBJECT_FIELD] or ""),
        html=rendered[HTML_FIELD] or None,
        text=rendered[TEXT_FIELD] or None,
    )


def parse_data(value: Mapping[str, Any] | str | None, field: str) -> dict[str, Any]:
    """Template data as given: an object, or (some SMTP2GO clients) an object as JSON text."""
    if value is None:
        return {}
    if isinstance(value, str):
        try:
            value = json.loads(value) if value.strip() else {}
        except (ValueError, RecursionError):
            value = None
    if not isinstance(value, Mapping):
        raise Invalid.field(field, N_("Must be an object of variables."), "invalid_type")
    return dict(value)
