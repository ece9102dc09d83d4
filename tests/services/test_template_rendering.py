"""Template rendering: Jinja2's immutable sandbox with every resource bounded. Hostile
templates and hostile data end in a clear Invalid naming the part, never a leak, a hang,
a MemoryError or a 500."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from mailgate.errors import Invalid
from mailgate.services.template_rendering import (
    MAX_RENDERED_CHARS,
    MAX_STEPS,
    MAX_TEMPLATE_CHARS,
    RenderedTemplate,
    TemplateParts,
    compile_parts,
    compiled,
    parse_data,
    render,
)


def text(source: str, data: dict[str, Any] | None = None) -> str | None:
    parts = TemplateParts(subject="", html="", text=source)
    return render(compile_parts(parts), data or {}).text


def refused(source: str, data: dict[str, Any] | None = None, field: str = "text_body") -> str:
    """The message of the one issue rendering ``source`` as the text part raises."""
    with pytest.raises(Invalid) as caught:
        text(source, data)
    [issue] = caught.value.issues
    assert issue.field == field
    return issue.message.format(**issue.params)


def test_variables_render_and_missing_ones_render_empty() -> None:
    assert text("Hello {{ name }}!", {"name": "Ann"}) == "Hello Ann!"
    assert text("Hello {{ name }}!") == "Hello !"
    assert text("[{{ user.name }}][{{ user.address.city }}]") == "[][]"
    assert text("[{{ user['name'] }}]", {"user": None}) == "[]"
    assert text("{% for x in missing %}x{% endfor %}done") == "done"
    assert text("{{ missing|default('none') }} {{ name|upper }}", {"name": "a"}) == "none A"
    assert text("{% if vip %}VIP{% else %}regular{% endif %}") == "regular"
    # data keys win over dict methods: {{ order.items }} is the order's items
    assert text("{{ order.items|join(', ') }}", {"order": {"items": ["a", "b"]}}) == "a, b"
    assert (
        text("{% for k, v in d.items() %}{{ k }}={{ v }};{% endfor %}", {"d": {"a": 1}}) == "a=1;"
    )


def test_html_is_autoescaped_in_the_html_part_only() -> None:
    parts = TemplateParts(subject="S {{ x }}", html="<p>{{ x }}</p>", text="T {{ x }}")
    out = render(compile_parts(parts), {"x": "<b>&\"'"})
    assert out.html == "<p>&lt;b&gt;&amp;&#34;&#39;</p>"
    assert out.text == "T <b>&\"'"
    assert out.subject == "S <b>&\"'"
    assert render(compile_parts(parts), {"x": "a" * 3}).html == "<p>aaa</p>"


def test_the_subject_is_one_line_whatever_the_data() -> None:
    parts = TemplateParts(subject="Hi {{ name }}\n", html="", text="")
    out = render(compile_parts(parts), {"name": "x\r\nBcc: victim@example.net\r\n\r\nbody\x00"})
    assert out.subject == "Hi x Bcc: victim@example.net body"
    assert "\r" not in out.subject and "\n" not in out.subject


def test_empty_parts_are_absent() -> None:
    out = render(compile_parts(TemplateParts(subject="", html="", text="")), {})
    assert out == RenderedTemplate(subject="", html=None, text=None)


@pytest.mark.parametrize(
    "source",
    [
        "{{ ''.__class__.__mro__ }}",
        "{{ ''.__class__.__mro__[1].__subclasses__() }}",
        "{{ cycler.__init__.__globals__ }}",
        "{{ joiner.__init__.__globals__.os }}",
        "{{ namespace.__init__.__globals__ }}",
        "{{ self.__init__.__globals__ }}",
        "{{ x.__class__ }}",
        "{{ x|attr('__class__') }}",
        "{{ x['__class__'] }}",
        "{{ missing.__class__ }}",
        "{{ range.__globals__ }}",
        "{{ '{0.__class__}'.format(x) }}",
        "{{ '{:>1000000000}'.format('x') }}",
        "{{ s.format_map(x) }}",
        "{{ d.update({'a': 1}) }}{{ d }}",
        "{{ l.append(1) }}",
        "{{ '%0999999999d' % 1 }}",
    ],
)
def test_internals_and_unsafe_calls_are_refused(source: str) -> None:
    data = {"x": 1, "s": "{x}", "d": {}, "l": []}
    assert "not allowed" in refused(source, data)


@pytest.mark.parametrize(
    "source",
    [
        "{{ 'x' * 10**9 }}",
        "{{ [0] * 10**9 }}",
        "{{ ('x' * 1000)|replace('', 'y' * 10000) }}",
        "{% set a = 'x' * 1000000 %}{{ a ~ a ~ a ~ a ~ a }}",
        "{% set a = 'x' * 1000000 %}{% set b = a + a %}{{ b + b + b }}",
        "{{ [['x'] * 100000] * 100000 }}",
        "{% set a = 'x' * 100000 %}{% set b = [a, a, a, a, a, a, a, a, a, a] %}"
        "{% set c = [b, b, b, b, b] %}{{ c|length }}",
        "{% set a = {'k': 'x' * 1000000} %}{% set b = (a, a, a, a, a) %}{{ b|length }}",
        "{% set a = ['x' * 100000] %}{% set b = a + a + a + a + a %}{% set c = b + b + b + b %}"
        "{% set d = c + c + c + c + c %}{{ d|length }}",
        "{% for i in range(90000) %}{{ 'y' * 100 }}{% endfor %}",
    ],
)
def test_output_is_bounded_before_it_is_built(source: str) -> None:
    assert str(MAX_RENDERED_CHARS) in refused(source)


@pytest.mark.parametrize(
    "source",
    [
        "{{ (10 ** 1000) ** 1000 }}",
        "{{ 2 ** 100000 }}",
        "{% set a = 10 ** 1000 %}{{ a * a * a * a * a }}",
    ],
)
def test_numbers_are_bounded(source: str) -> None:
    assert "number" in refused(source)


@pytest.mark.parametrize(
    "source",
    [
        "{% for a in range(100000) %}{% for b in range(100000) %}{% endfor %}{% endfor %}",
        "{% for a in s %}{% for b in s %}{% for c in s %}{% endfor %}{% endfor %}{% endfor %}",
        "{% macro f(n) %}{% if n %}{{ f(n - 1) }}{{ f(n - 1) }}{% endif %}{% endmacro %}"
        "{{ f(60) }}",
        "{{ range(10 ** 9)|list }}",
    ],
)
def test_work_is_bounded(source: str) -> None:
    assert str(MAX_STEPS) in refused(source, {"s": "x" * 1000})


def test_no_state_carries_across_loop_iterations() -> None:
    # namespace() is how a template would double a value in a loop: it is not offered
    doubling = (
        "{% set ns = namespace(s='x') %}{% for i in range(64) %}{% set ns.s = ns.s ~ ns.s %}"
        "{% endfor %}{{ ns.s|length }}"
    )
    assert "undefined" in refused(doubling)


def test_literals_and_data_within_bounds_render() -> None:
    data = {"rows": [{"a": i} for i in range(1000)]}
    assert text("{{ (rows|length, [1, 2], {'k': 'v'}['k']) }}", data) == "(1000, [1, 2], 'v')"
    assert text("{% set a, b = 1, 2 %}{{ a + b }}{{ [a] * 3 }}") == "3[1, 1, 1]"


def test_recursion_is_refused() -> None:
    assert "recurses" in refused("{% macro f(n) %}{{ f(n) }}{% endmacro %}{{ f(1) }}")
    looped = "{% for x in [1] recursive %}{{ loop([x]) }}{% endfor %}"
    assert "recurses" in refused(looped) or str(MAX_STEPS) in refused(looped)


def test_a_render_error_says_what_went_wrong() -> None:
    assert "undefined" in refused("{{ total + 1 }}")
    assert "ZeroDivisionError" in refused("{{ 1 / 0 }}")


def test_ordinary_loops_fit_the_budget() -> None:
    items = [{"name": f"item {i}", "price": i} for i in range(1000)]
    out = text(
        "{% for i in items %}{{ loop.index }}. {{ i.name }}: {{ i.price }}\n{% endfor %}",
        {"items": items},
    )
    assert out is not None and out.count("\n") == 1000 and "1000. item 999: 999" in out


@pytest.mark.parametrize(
    ("parts", "field", "line"),
    [
        (TemplateParts("", "<p>a</p>\n<p>b</p>\n{% if %}", ""), "html_body", 3),
        (TemplateParts("{{ unclosed", "", ""), "subject", 1),
        (TemplateParts("", "", "a\n{% endfor %}"), "text_body", 2),
        (TemplateParts("", "", "x\n\n{% extends 'base.html' %}"), "text_body", 3),
        (TemplateParts("", "", "{% import 'm' as m %}"), "text_body", 1),
        (TemplateParts("", "", "{{ x|center(80) }}"), "text_body", 1),  # no such filter here
    ],
)
def test_syntax_errors_name_the_part_and_line(parts: TemplateParts, field: str, line: int) -> None:
    with pytest.raises(Invalid) as caught:
        compile_parts(parts)
    [issue] = caught.value.issues
    assert issue.field == field and issue.code == "template_syntax"
    assert issue.params["line"] == line, issue


def test_every_bad_part_is_reported_at_once() -> None:
    with pytest.raises(Invalid) as caught:
        compile_parts(TemplateParts("{{", "{% if %}", "x" * (MAX_TEMPLATE_CHARS + 1)))
    assert [i.field for i in caught.value.issues] == ["subject", "html_body", "text_body"]
    assert caught.value.issues[2].code == "too_long"


def test_compiled_templates_are_cached_by_id_and_version() -> None:
    reads: list[str] = []

    def source(body: str) -> Any:
        def read() -> TemplateParts:
            reads.append(body)
            return TemplateParts("", "", body)

        return read

    version = datetime(2026, 11, 22, tzinfo=UTC)
    first = compiled((987_654, version), source("one {{ x }}"))
    again = compiled((987_654, version), source("never read"))
    assert again is first and reads == ["one {{ x }}"]
    newer = compiled((987_654, version + timedelta(seconds=1)), source("two {{ x }}"))
    assert render(newer, {"x": 1}).text == "two 1" and render(first, {"x": 1}).text == "one 1"
    assert reads == ["one {{ x }}", "two {{ x }}"]


def test_budgets_are_per_render() -> None:
    template = compile_parts(TemplateParts("", "", "{% for i in range(90000) %}{% endfor %}ok"))
    for _ in range(5):  # each render starts with a full budget
        assert render(template, {}).text == "ok"


@pytest.mark.parametrize(
    ("value", "expected"),
    [(None, {}), ({"a": 1}, {"a": 1}), ('{"a": [1]}', {"a": [1]}), ("", {}), ("  ", {})],
)
def test_template_data_as_an_object_or_json_text(value: Any, expected: dict[str, Any]) -> None:
    assert parse_data(value, "template_data") == expected


@pytest.mark.parametrize("value", ["[1, 2]", "not json", "42", '"text"', "[" * 100_000])
def test_template_data_that_is_not_an_object_is_refused(value: str) -> None:
    with pytest.raises(Invalid) as caught:
        parse_data(value, "template_data")
    assert [i.field for i in caught.value.issues] == ["template_data"]


def test_deeply_nested_data_is_a_clear_error() -> None:
    deep: Any = "x"
    for _ in range(5000):
        deep = [deep]
    assert "recurses" in refused("{{ ([d],)|length }}", {"d": deep})
