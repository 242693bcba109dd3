"""Symbol extraction: functions, classes, methods and their kin, with line ranges, from a tree-sitter parse."""

from __future__ import annotations

import re
from dataclasses import dataclass

from tree_sitter import Node, Parser, QueryCursor

from conveyor.indexer.languages import grammar_for

CONTAINER_KINDS = frozenset({"class", "interface", "struct", "trait", "impl", "enum"})
MAX_SIGNATURE = 200
MAX_DOC = 300
_WRAPPERS = frozenset(
    {"export_statement", "decorated_definition", "lexical_declaration", "variable_declaration", "type_declaration"}
)
_OPEN_SPACE = re.compile(r"\(\s+")
_CLOSE_SPACE = re.compile(r",?\s+\)")
_COMMENT_MARKERS = re.compile(r"^\s*(///?|//!|/\*\*?|\*/|\*|#)\s?")


@dataclass(frozen=True, slots=True)
class Symbol:
    """A definition in a source file. Lines are 1-based and inclusive."""

    name: str
    kind: str
    qualified: str
    start_line: int
    end_line: int
    signature: str
    doc: str = ""


@dataclass
class _Definition:
    node: Node
    kind: str
    name: str
    owner: str = ""  # what it belongs to when no enclosing definition says so (`Foo` of `Foo.prototype.x`)
    parent: _Definition | None = None

    @property
    def qualified(self) -> str:
        if self.parent:
            return f"{self.parent.qualified}.{self.name}"
        return f"{self.owner}.{self.name}" if self.owner else self.name


def extract_symbols(source: bytes, language: str | None) -> list[Symbol]:
    """The symbols of a file, in source order; empty for languages without a grammar.

    Methods are functions whose nearest enclosing definition is a class-like one (class, interface, struct,
    trait, impl, enum); Go methods are attached to their receiver type. `qualified` joins the enclosing
    names with dots (`Parser.parse`, `outer.inner`).
    """
    grammar = grammar_for(language)
    if grammar is None:
        return []
    tree = Parser(grammar.language).parse(source)
    definitions = _definitions(QueryCursor(grammar.query).matches(tree.root_node), source)
    _link_parents(definitions)
    symbols = [_symbol(d, source, language) for d in definitions]
    return sorted(symbols, key=lambda s: (s.start_line, -s.end_line))


def _definitions(matches: list[tuple[int, dict[str, list[Node]]]], source: bytes) -> list[_Definition]:
    found: dict[int, _Definition] = {}
    # A node several patterns capture takes its kind from the first of them in the query (Go's `struct` before
    # the catch-all `type`).
    for _, captures in sorted(matches, key=lambda match: match[0]):
        names = captures.get("name") or []
        kinds = [key for key in captures if key not in ("name", "owner") and not key.startswith("_")]
        if not names or not kinds:
            continue
        node = captures[kinds[0]][0]
        name = _text(names[0], source).strip("\"'")
        if kinds[0] == "impl":
            name = name.split("<", 1)[0]  # `impl<T> Trait for Foo<T>` belongs to `Foo`
        owners = captures.get("owner")
        owner = _text(owners[0], source) if owners else _object_owner(node, source)
        found.setdefault(node.id, _Definition(node, kinds[0], name, owner))
    return list(found.values())


def _object_owner(node: Node, source: bytes) -> str:
    """The variable an object literal's method belongs to (`api` of `const api = { send() {} }`), if any."""
    literal = node.parent
    if node.type not in ("pair", "method_definition") or literal is None or literal.type != "object":
        return ""
    holder = literal.parent
    if holder is not None and holder.type == "variable_declarator":
        name = holder.child_by_field_name("name")
        return _text(name, source) if name is not None else ""
    return ""


def _link_parents(definitions: list[_Definition]) -> None:
    by_id = {d.node.id: d for d in definitions}
    for definition in definitions:
        ancestor = definition.node.parent
        while ancestor is not None and ancestor.id not in by_id:
            ancestor = ancestor.parent
        definition.parent = by_id[ancestor.id] if ancestor is not None else None
        if definition.kind == "function" and definition.parent and definition.parent.kind in CONTAINER_KINDS:
            definition.kind = "method"


def _symbol(definition: _Definition, source: bytes, language: str | None) -> Symbol:
    node = definition.node
    qualified = definition.qualified
    if language == "go" and definition.kind == "method":
        receiver = _go_receiver(node, source)
        qualified = f"{receiver}.{definition.name}" if receiver else definition.name
    end_row = node.end_point.row
    if node.end_point.column == 0 and end_row > node.start_point.row:
        end_row -= 1
    return Symbol(
        name=definition.name,
        kind=definition.kind,
        qualified=qualified,
        start_line=node.start_point.row + 1,
        end_line=end_row + 1,
        signature=_signature(node, source),
        doc=_python_docstring(node, source) if language == "python" else _leading_comment(node, source),
    )


def _text(node: Node, source: bytes) -> str:
    return source[node.start_byte : node.end_byte].decode("utf-8", "replace")


def _go_receiver(node: Node, source: bytes) -> str:
    receiver = node.child_by_field_name("receiver")
    if receiver is None:
        return ""
    stack = [receiver]
    while stack:
        current = stack.pop()
        if current.type == "type_identifier":
            return _text(current, source)
        stack.extend(reversed(current.children))
    return ""


def _signature(node: Node, source: bytes) -> str:
    body = node.child_by_field_name("body")
    value = node.child_by_field_name("value") or node.child_by_field_name("right")
    if body is None and value is not None:
        body = value.child_by_field_name("body")
    end = _header_end(body) if body is not None else node.end_byte
    head = source[node.start_byte : end].decode("utf-8", "replace")
    if body is None:
        head = head.split("\n", 1)[0]
    head = " ".join(head.split()).rstrip(":{ ").strip()
    head = _CLOSE_SPACE.sub(")", _OPEN_SPACE.sub("(", head))  # `f( a, b, )` as `f(a, b)`
    return head[:MAX_SIGNATURE]


def _header_end(body: Node) -> int:
    """Where a definition's header ends: after the last token before its body that is not a comment (a
    Python function's comments above its first statement sit between the `:` and the body)."""
    end = body.start_byte
    siblings = body.parent.children if body.parent is not None else []
    for sibling in siblings:
        if sibling.start_byte >= body.start_byte:
            break
        if "comment" not in sibling.type:
            end = sibling.end_byte
    return end


def _python_docstring(node: Node, source: bytes) -> str:
    body = node.child_by_field_name("body")
    if body is None or not body.named_children:
        return ""
    first = body.named_children[0]
    if first.type != "expression_statement" or not first.named_children:
        return ""
    literal = first.named_children[0]
    if literal.type != "string":
        return ""
    text = _text(literal, source).strip()
    text = re.sub(r'^[rRbBuU]*("""|\'\'\'|"|\')', "", text)
    text = re.sub(r'("""|\'\'\'|"|\')$', "", text)
    return _first_paragraph(text)


def _leading_comment(node: Node, source: bytes) -> str:
    anchor = node
    while anchor.parent is not None and anchor.parent.type in _WRAPPERS:
        anchor = anchor.parent
    lines: list[str] = []
    expected_row = anchor.start_point.row
    sibling = anchor.prev_sibling
    while sibling is not None and "comment" in sibling.type and sibling.end_point.row >= expected_row - 1:
        lines[:0] = _text(sibling, source).splitlines()
        expected_row = sibling.start_point.row
        sibling = sibling.prev_sibling
    cleaned = [_COMMENT_MARKERS.sub("", line).rstrip(" */") for line in lines]
    return _first_paragraph("\n".join(cleaned))


def _first_paragraph(text: str) -> str:
    paragraph = text.strip().split("\n\n", 1)[0]
    return " ".join(paragraph.split())[:MAX_DOC]
