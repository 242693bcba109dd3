"""Static facts about a source file, from its tree-sitter parse: definitions with their size, nesting, decision
points, parameters and calls; imports; the file's own doc comment; duplicated blocks of lines.

These are heuristics that read the syntax tree, not a type checker: the offline provider says so in its output.
"""

from __future__ import annotations

import hashlib
import re
from collections import defaultdict
from dataclasses import dataclass, field

from tree_sitter import Node, Parser

from conveyor.indexer.languages import grammar_for
from conveyor.indexer.symbols import Symbol, extract_symbols

FUNCTION_KINDS = frozenset({"function", "method", "constructor"})
CONTROL_TYPES = frozenset(
    {
        "if_statement", "for_statement", "for_in_statement", "enhanced_for_statement", "while_statement",
        "do_statement", "switch_statement", "switch_expression", "expression_switch_statement",
        "type_switch_statement", "select_statement", "try_statement", "try_with_resources_statement",
        "with_statement", "match_statement", "if_expression", "for_expression", "while_expression",
        "loop_expression", "match_expression",
    }
)  # fmt: skip
IF_TYPES = frozenset({"if_statement", "if_expression"})
EXTRA_DECISIONS = frozenset(
    {"elif_clause", "except_clause", "catch_clause", "case_clause", "switch_case", "expression_case", "match_arm",
     "switch_block_statement_group", "conditional_expression", "ternary_expression", "boolean_operator"}
)  # fmt: skip
CALL_TYPES = frozenset({"call", "call_expression", "method_invocation"})
IMPORT_TYPES = frozenset(
    {"import_statement", "import_from_statement", "future_import_statement", "import_declaration",
     "use_declaration", "import_spec"}
)  # fmt: skip
NOT_PARAMETERS = frozenset({"self", "cls", "&self", "&mut self", "mut self", "*", "/"})  # receivers, separators
DUPLICATE_WINDOW = 6  # lines
MIN_DUPLICATE_CHARS = 60  # a window of braces and `return x` is not worth reporting
_COMMENT_LINE = re.compile(r"^(#|//|/\*|\*|--)")
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


@dataclass(frozen=True, slots=True)
class FunctionFacts:
    """Measurements of one function, method or constructor."""

    symbol: Symbol
    length: int
    max_nesting: int
    decisions: int
    parameters: int
    calls: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Duplicate:
    """A block of `length` normalized lines that occurs at each of `lines` (first lines, 1-based)."""

    lines: tuple[int, ...]
    length: int


@dataclass
class FileFacts:
    """Everything the offline provider knows about a file."""

    language: str | None
    lines: int
    doc: str
    imports: list[str]
    symbols: list[Symbol]
    functions: list[FunctionFacts]
    syntax_errors: list[int] = field(default_factory=list)

    def function(self, name: str) -> FunctionFacts | None:
        """The function called `name` (qualified or bare), if any."""
        matches = [f for f in self.functions if name in (f.symbol.qualified, f.symbol.name)]
        return matches[0] if matches else None

    def symbol(self, name: str) -> Symbol | None:
        """The symbol called `name` (qualified or bare), if any."""
        matches = [s for s in self.symbols if name in (s.qualified, s.name)]
        return matches[0] if matches else None


def analyse(source: str, language: str | None) -> FileFacts:
    """The facts of a file; languages without a grammar get line counts only."""
    data = source.encode()
    line_count = source.count("\n") + (0 if source.endswith("\n") else 1)
    grammar = grammar_for(language)
    if grammar is None:
        return FileFacts(language, line_count, "", [], [], [])
    root = Parser(grammar.language).parse(data).root_node
    symbols = extract_symbols(data, language)
    nodes = _function_nodes(root, {(s.start_line, s.end_line) for s in symbols if s.kind in FUNCTION_KINDS})
    functions = [_measure(s, nodes[(s.start_line, s.end_line)], data) for s in symbols if s.kind in FUNCTION_KINDS]
    return FileFacts(
        language=language,
        lines=line_count,
        doc=_file_doc(root, data),
        imports=_imports(root, data),
        symbols=symbols,
        functions=functions,
        syntax_errors=_syntax_errors(root),
    )


def _function_nodes(root: Node, ranges: set[tuple[int, int]]) -> dict[tuple[int, int], Node]:
    """The outermost node spanning each (start, end) line range of a function symbol."""
    found: dict[tuple[int, int], Node] = {}
    stack = [root]
    while stack:
        node = stack.pop()
        key = (node.start_point.row + 1, _last_line(node))
        if key in ranges and key not in found and node.named_child_count:
            found[key] = node
        stack.extend(reversed(node.children))
    return found


def _last_line(node: Node) -> int:
    """The 1-based last line of a node, as symbols count it (a node ending at column 0 ends the line before)."""
    row = node.end_point.row
    return row if node.end_point.column == 0 and row > node.start_point.row else row + 1


def _measure(symbol: Symbol, node: Node, data: bytes) -> FunctionFacts:
    max_depth, decisions = 0, 0
    calls: list[tuple[int, str]] = []
    stack: list[tuple[Node, int]] = [(node, 0)]
    while stack:
        current, depth = stack.pop()
        if current.type in CONTROL_TYPES:
            is_else_if = (
                current.type in IF_TYPES
                and current.parent is not None
                and (current.parent.type == "else_clause" or current.parent.type in IF_TYPES)
            )
            depth = depth if is_else_if else depth + 1
            max_depth = max(max_depth, depth)
            decisions += 1
        elif current.type in EXTRA_DECISIONS:
            decisions += 1
        elif current.type in CALL_TYPES:
            calls.append((current.start_byte, _callee(current, data)))
        stack.extend((child, depth) for child in current.children)
    return FunctionFacts(
        symbol=symbol,
        length=symbol.end_line - symbol.start_line + 1,
        max_nesting=max_depth,
        decisions=decisions,
        parameters=_parameters(node, data),
        calls=tuple(dict.fromkeys(name for _, name in sorted(calls) if name)),
    )


def _callee(call: Node, data: bytes) -> str:
    target = call.child_by_field_name("function") or call.child_by_field_name("name") or call
    names = _NAME.findall(data[target.start_byte : target.end_byte].decode("utf-8", "replace"))
    return names[-1] if names else ""


def _parameters(node: Node, data: bytes) -> int:
    params = node.child_by_field_name("parameters")
    if params is None:
        value = node.child_by_field_name("value")
        params = value.child_by_field_name("parameters") if value is not None else None
    if params is None:
        return 0
    texts = [data[c.start_byte : c.end_byte].decode("utf-8", "replace").strip() for c in params.named_children]
    return sum(1 for text in texts if text not in NOT_PARAMETERS and not text.startswith(("//", "/*", "#")))


def _file_doc(root: Node, data: bytes) -> str:
    comments: list[str] = []
    for child in root.named_children:
        if child.type == "expression_statement" and child.named_children and child.named_children[0].type == "string":
            parts = [c for c in child.named_children[0].named_children if c.type == "string_content"]
            return _clean_doc("".join(data[c.start_byte : c.end_byte].decode("utf-8", "replace") for c in parts))
        if "comment" not in child.type:
            break
        comments.append(data[child.start_byte : child.end_byte].decode("utf-8", "replace"))
    lines = [re.sub(r"^\s*(///?|//!|/\*\*?|\*/|\*|#!?)\s?", "", line) for c in comments for line in c.splitlines()]
    return _clean_doc("\n".join(line.rstrip(" */") for line in lines))


def _clean_doc(text: str) -> str:
    paragraph = text.strip().split("\n\n", 1)[0]
    return " ".join(paragraph.split())[:400]


def _imports(root: Node, data: bytes) -> list[str]:
    found: list[str] = []
    stack = list(reversed(root.named_children))
    while stack:
        node = stack.pop()
        if node.type in IMPORT_TYPES:
            found.append(" ".join(data[node.start_byte : node.end_byte].decode("utf-8", "replace").split())[:120])
        elif node.type in ("import_declaration", "import_spec_list") or node.type.endswith("import_list"):
            stack.extend(reversed(node.named_children))
    return list(dict.fromkeys(found))


def _syntax_errors(root: Node) -> list[int]:
    """1-based lines of parse errors (ERROR nodes, and tokens the parser had to invent)."""
    if not root.has_error:
        return []
    lines: set[int] = set()
    stack = [root]
    while stack:
        node = stack.pop()
        if node.is_error or node.is_missing:
            lines.add(node.start_point.row + 1)
        elif node.has_error:
            stack.extend(node.children)
    return sorted(lines)


def duplicated_blocks(source: str, window: int = DUPLICATE_WINDOW) -> list[Duplicate]:
    """Blocks of `window` consecutive non-blank, non-comment lines (compared without indentation) that occur
    more than once; overlapping windows of one repeated region are reported once."""
    normalized = [
        (number, line.strip())
        for number, line in enumerate(source.splitlines(), start=1)
        if line.strip() and not _COMMENT_LINE.match(line.strip())
    ]
    places: dict[str, list[int]] = defaultdict(list)
    for i in range(len(normalized) - window + 1):
        block = [text for _, text in normalized[i : i + window]]
        if sum(ch.isalnum() for text in block for ch in text) >= MIN_DUPLICATE_CHARS:
            places[hashlib.sha1("\n".join(block).encode(), usedforsecurity=False).hexdigest()].append(i)
    covered: set[int] = set()
    found = []
    for starts in sorted((s for s in places.values() if len(s) > 1), key=lambda s: s[0]):
        spaced = [s for n, s in enumerate(starts) if n == 0 or s - starts[n - 1] >= window]
        if len(spaced) < 2 or any(s in covered for s in spaced):
            continue
        for start in spaced:
            covered.update(range(start, start + window))
        found.append(Duplicate(tuple(normalized[s][0] for s in spaced), window))
    return found
