"""Language detection by file name, and the tree-sitter grammars and symbol queries of the parsed languages.

Every text file is indexed for full-text search; symbols (functions, classes, methods …) are extracted for the
languages that have a grammar here: Python, JavaScript, TypeScript (and TSX), Go, Rust and Java. Grammars come
from their PyPI wheels and are loaded on first use, so a process that never parses Go never loads Go.
"""

from __future__ import annotations

import importlib
import threading
from dataclasses import dataclass
from pathlib import PurePath

from tree_sitter import Language, Query

from conveyor.indexer.errors import GrammarUnavailableError

# Extension → language name. Languages without a grammar below are indexed as text only.
EXTENSIONS: dict[str, str] = {
    ".py": "python",
    ".pyi": "python",
    ".js": "javascript",
    ".mjs": "javascript",
    ".cjs": "javascript",
    ".jsx": "javascript",
    ".ts": "typescript",
    ".mts": "typescript",
    ".cts": "typescript",
    ".tsx": "tsx",
    ".go": "go",
    ".rs": "rust",
    ".java": "java",
    ".c": "c",
    ".h": "c",
    ".cc": "cpp",
    ".cpp": "cpp",
    ".hpp": "cpp",
    ".cs": "csharp",
    ".rb": "ruby",
    ".php": "php",
    ".kt": "kotlin",
    ".swift": "swift",
    ".scala": "scala",
    ".sh": "shell",
    ".bash": "shell",
    ".sql": "sql",
    ".md": "markdown",
    ".rst": "rst",
    ".txt": "text",
    ".toml": "toml",
    ".yaml": "yaml",
    ".yml": "yaml",
    ".json": "json",
    ".html": "html",
    ".css": "css",
    ".graphql": "graphql",
    ".proto": "protobuf",
}
FILENAMES: dict[str, str] = {"Dockerfile": "dockerfile", "Makefile": "make", "CMakeLists.txt": "cmake"}

# What a query capture means. Every pattern captures the definition node as `@<kind>` and its name as `@name`
# (a node captured by several patterns takes the kind of the first);
# `@owner` names what a definition outside any other belongs to (`Foo` of `Foo.prototype.bar = function`), and
# captures starting with `_` only serve predicates.
_JS_FUNCTION = "[(function_expression) (arrow_function) (generator_function)]"
_JS_COMMON = f"""
(function_declaration name: (identifier) @name) @function
(generator_function_declaration name: (identifier) @name) @function
(method_definition name: (_) @name) @method
(variable_declarator name: (identifier) @name value: [(arrow_function) (function_expression)]) @function
(pair key: [(property_identifier) (string)] @name value: {_JS_FUNCTION}) @method
(assignment_expression
  left: (member_expression
    object: (member_expression object: (identifier) @owner property: (property_identifier) @_prototype)
    property: (property_identifier) @name)
  right: {_JS_FUNCTION}
  (#eq? @_prototype "prototype")) @method
(assignment_expression
  left: (member_expression object: (identifier) @_exports property: (property_identifier) @name)
  right: [{_JS_FUNCTION[1:-1]} (class)]
  (#eq? @_exports "exports")) @function
(assignment_expression
  left: (member_expression
    object: (member_expression object: (identifier) @_module property: (property_identifier) @_exports)
    property: (property_identifier) @name)
  right: [{_JS_FUNCTION[1:-1]} (class)]
  (#eq? @_module "module")
  (#eq? @_exports "exports")) @function
"""
_JS_FIELDS = f"""
(field_definition property: [(property_identifier) (private_property_identifier)] @name value: {_JS_FUNCTION}) @method
"""
_TS_FIELDS = f"""
(public_field_definition
  name: [(property_identifier) (private_property_identifier)] @name
  value: {_JS_FUNCTION}) @method
"""
QUERIES: dict[str, str] = {
    "python": """
(class_definition name: (identifier) @name) @class
(function_definition name: (identifier) @name) @function
""",
    "javascript": _JS_COMMON + _JS_FIELDS + "(class_declaration name: (identifier) @name) @class\n",
    "typescript": _JS_COMMON
    + _TS_FIELDS
    + """
(class_declaration name: (type_identifier) @name) @class
(abstract_class_declaration name: (type_identifier) @name) @class
(interface_declaration name: (type_identifier) @name) @interface
(enum_declaration name: (identifier) @name) @enum
(type_alias_declaration name: (type_identifier) @name) @type
""",
    "go": """
(function_declaration name: (identifier) @name) @function
(method_declaration name: (field_identifier) @name) @method
(type_spec name: (type_identifier) @name type: (struct_type)) @struct
(type_spec name: (type_identifier) @name type: (interface_type)) @interface
(type_spec name: (type_identifier) @name) @type
(type_alias name: (type_identifier) @name) @type
(source_file (const_declaration (const_spec name: (identifier) @name) @constant))
""",
    "rust": """
(function_item name: (identifier) @name) @function
(function_signature_item name: (identifier) @name) @function
(struct_item name: (type_identifier) @name) @struct
(enum_item name: (type_identifier) @name) @enum
(trait_item name: (type_identifier) @name) @trait
(impl_item type: (_) @name) @impl
(mod_item name: (identifier) @name) @module
(macro_definition name: (identifier) @name) @macro
(type_item name: (type_identifier) @name) @type
(union_item name: (type_identifier) @name) @struct
(const_item name: (identifier) @name) @constant
(static_item name: (identifier) @name) @constant
""",
    "java": """
(class_declaration name: (identifier) @name) @class
(interface_declaration name: (identifier) @name) @interface
(enum_declaration name: (identifier) @name) @enum
(record_declaration name: (identifier) @name) @class
(method_declaration name: (identifier) @name) @method
(constructor_declaration name: (identifier) @name) @constructor
(compact_constructor_declaration name: (identifier) @name) @constructor
(annotation_type_declaration name: (identifier) @name) @interface
""",
}
QUERIES["tsx"] = QUERIES["typescript"]

# Language → (module, function returning the grammar) of its PyPI wheel.
_GRAMMARS: dict[str, tuple[str, str]] = {
    "python": ("tree_sitter_python", "language"),
    "javascript": ("tree_sitter_javascript", "language"),
    "typescript": ("tree_sitter_typescript", "language_typescript"),
    "tsx": ("tree_sitter_typescript", "language_tsx"),
    "go": ("tree_sitter_go", "language"),
    "rust": ("tree_sitter_rust", "language"),
    "java": ("tree_sitter_java", "language"),
}
PARSED_LANGUAGES = tuple(_GRAMMARS)


def detect_language(path: str | PurePath) -> str | None:
    """The language of a file from its name (`src/app.ts` → `typescript`), or None when unknown."""
    pure = PurePath(path)
    return FILENAMES.get(pure.name) or EXTENSIONS.get(pure.suffix.lower())


@dataclass(frozen=True)
class Grammar:
    """A loaded tree-sitter grammar and its compiled symbol query."""

    name: str
    language: Language
    query: Query


_cache: dict[str, Grammar] = {}
_cache_lock = threading.Lock()


def grammar_for(language: str | None) -> Grammar | None:
    """The grammar of a language with symbol extraction, loaded once per process; None for text-only ones.

    Raises:
        GrammarUnavailableError: the grammar's wheel is not installed.
    """
    if language not in _GRAMMARS:
        return None
    with _cache_lock:
        if language not in _cache:
            module_name, function = _GRAMMARS[language]
            try:
                module = importlib.import_module(module_name)
            except ImportError as exc:
                raise GrammarUnavailableError(language, module_name) from exc
            loaded = Language(getattr(module, function)())
            _cache[language] = Grammar(language, loaded, Query(loaded, QUERIES[language]))
        return _cache[language]
