"""Symbols (functions, classes, methods …) with line ranges, for every language with a grammar."""

from __future__ import annotations

import pytest

from conveyor.indexer.languages import PARSED_LANGUAGES, detect_language, grammar_for
from conveyor.indexer.symbols import extract_symbols
from tests.indexer import helpers

EXPECTED = {
    "python": (
        helpers.PYTHON,
        [
            ("InvoiceCalculator", "class", 6, 10),
            ("InvoiceCalculator.total_with_tax", "method", 9, 10),
            ("format_currency", "function", 13, 14),
        ],
    ),
    "typescript": (
        helpers.TYPESCRIPT,
        [
            ("WidgetProps", "interface", 2, 4),
            ("DashboardRenderer", "class", 6, 10),
            ("DashboardRenderer.renderWidget", "method", 7, 9),
            ("parseLayout", "function", 12, 12),
        ],
    ),
    "javascript": (
        helpers.JAVASCRIPT,
        [
            ("EventBus", "class", 1, 5),
            ("EventBus.subscribeTopic", "method", 2, 4),
            ("dispatchMessage", "function", 7, 9),
        ],
    ),
    "go": (
        helpers.GO,
        [
            ("KeyValueStore", "struct", 4, 6),
            ("KeyValueStore.LookupKey", "method", 8, 10),
            ("NewKeyValueStore", "function", 12, 14),
        ],
    ),
    "rust": (
        helpers.RUST,
        [
            ("RingBuffer", "struct", 2, 4),
            ("RingBuffer", "impl", 6, 10),
            ("RingBuffer.push_sample", "method", 7, 9),
            ("average_samples", "function", 12, 14),
        ],
    ),
    "java": (
        helpers.JAVA,
        [
            ("OrderService", "class", 4, 10),
            ("OrderService.OrderService", "constructor", 5, 5),
            ("OrderService.placeOrder", "method", 7, 9),
        ],
    ),
}


@pytest.mark.parametrize("language", sorted(EXPECTED))
def test_symbols_have_kinds_qualified_names_and_line_ranges(language: str) -> None:
    source, expected = EXPECTED[language]
    found = [(s.qualified, s.kind, s.start_line, s.end_line) for s in extract_symbols(source.encode(), language)]
    assert found == expected


def test_doc_comments_and_docstrings_are_kept_with_their_symbol() -> None:
    python = {s.qualified: s for s in extract_symbols(helpers.PYTHON.encode(), "python")}
    go = {s.qualified: s for s in extract_symbols(helpers.GO.encode(), "go")}
    java = {s.qualified: s for s in extract_symbols(helpers.JAVA.encode(), "java")}
    assert python["InvoiceCalculator"].doc == "Computes invoice totals."
    assert go["KeyValueStore"].doc == "KeyValueStore keeps values in memory."
    assert java["OrderService"].doc == "Places orders."


def test_signature_is_the_header_without_the_body() -> None:
    python = {s.qualified: s for s in extract_symbols(helpers.PYTHON.encode(), "python")}
    assert python["InvoiceCalculator.total_with_tax"].signature == "def total_with_tax(self, amount, rate)"


def test_tsx_grammar_parses_components() -> None:
    source = b"export function Greeting(props: {name: string}) {\n  return <b>{props.name}</b>;\n}\n"
    assert [(s.name, s.kind) for s in extract_symbols(source, "tsx")] == [("Greeting", "function")]


def test_text_languages_have_no_symbols_and_unknown_files_no_language() -> None:
    assert detect_language("docs/README.md") == "markdown"
    assert extract_symbols(b"# Title\n", "markdown") == []
    assert detect_language("data.unknownext") is None


def test_every_parsed_language_has_a_loadable_grammar_and_a_valid_query() -> None:
    for language in PARSED_LANGUAGES:
        grammar = grammar_for(language)
        assert grammar is not None
        assert grammar.query.pattern_count > 0


def test_broken_source_still_yields_the_symbols_that_parse() -> None:
    source = b"def fine():\n    return 1\n\ndef broken(:\n"
    names = [s.name for s in extract_symbols(source, "python")]
    assert "fine" in names


JS_FORMS = b"""function Emitter() {}
Emitter.prototype.emit = function (event) { return event; };
Emitter.prototype.off = (event) => event;
const api = {
  send(message) { return message; },
  close: function () {},
  open: async () => {},
};
class Child {
  #handleExit = (err) => { this.err = err; };
  static spawn = () => new Child();
}
exports.parse = function parse(text) {};
module.exports.format = (value) => String(value);
"""
JS_EXPECTED = [
    ("Emitter", "function", 1),
    ("Emitter.emit", "method", 2),
    ("Emitter.off", "method", 3),
    ("api.send", "method", 5),
    ("api.close", "method", 6),
    ("api.open", "method", 7),
    ("Child", "class", 9),
    ("Child.#handleExit", "method", 10),
    ("Child.spawn", "method", 11),
    ("parse", "function", 13),
    ("format", "function", 14),
]


@pytest.mark.parametrize("language", ["javascript", "typescript"])
def test_prototype_object_literal_class_field_and_exports_forms_are_symbols(language: str) -> None:
    found = [(s.qualified, s.kind, s.start_line) for s in extract_symbols(JS_FORMS, language)]
    assert found == JS_EXPECTED


def test_a_python_signature_stops_before_the_comments_that_open_the_body() -> None:
    source = b"def handler(event, context):  # entry point\n    # Leading comment of the body\n    return event\n"
    (symbol,) = extract_symbols(source, "python")
    assert symbol.signature == "def handler(event, context)"


@pytest.mark.parametrize(
    ("language", "source", "expected"),
    [
        (
            "go",
            b"package x\ntype ID string\ntype Alias = map[string]int\ntype Pair[T any] struct{ a T }\n"
            b"func f() { const local = 1 }\nconst (\n\tA = iota\n\tB\n)\n",
            [("type", "ID"), ("type", "Alias"), ("struct", "Pair"), ("function", "f"), ("constant", "A"),
             ("constant", "B")],
        ),
        (
            "rust",
            b"macro_rules! square { ($x:expr) => { $x * $x }; }\npub type Res<T> = Result<T, E>;\n"
            b"pub const MAX: u32 = 3;\nstatic NAME: &str = \"x\";\nunion U { a: u32 }\n",
            [("macro", "square"), ("type", "Res"), ("constant", "MAX"), ("constant", "NAME"), ("struct", "U")],
        ),
        (
            "java",
            b"public @interface Marker { String value(); }\npublic record Point(int x, int y) { Point { } }\n",
            [("interface", "Marker"), ("class", "Point"), ("constructor", "Point.Point")],
        ),
    ],
)  # fmt: skip
def test_type_aliases_constants_macros_and_annotations_are_symbols(
    language: str, source: bytes, expected: list[tuple[str, str]]
) -> None:
    assert [(s.kind, s.qualified) for s in extract_symbols(source, language)] == expected
