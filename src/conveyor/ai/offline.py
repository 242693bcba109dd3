"""The offline provider: answers every task with static analysis and says so. No network, no model.

- `generate-summary`: the file's doc comment, imports and definitions with their signatures and docs.
- `explain`: a definition (or the file) described from its syntax: signature, doc, size, branches, calls.
- `refactor`: hints from function length, nesting depth, parameter count, decision points, duplicated blocks.
- `fix`: what the available checkers find (Python's compiler, ruff with its fix diff, tree-sitter parse errors).

The output is deterministic: the same file gives the same result.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from conveyor.ai.analysis import FileFacts, FunctionFacts, analyse, duplicated_blocks
from conveyor.ai.lint import LintReport, check_python_compiles, run_ruff, syntax_findings
from conveyor.ai.provider import AIRequest, AIResult
from conveyor.indexer.symbols import Symbol

NOTICE = "_Offline static analysis: no language model was used; everything below is read from the syntax._"
MODEL = "static-analysis"
LONG_FUNCTION_LINES = 50
DEEP_NESTING = 4
MANY_PARAMETERS = 5
MANY_DECISIONS = 10
MAX_LISTED = 40


class OfflineProvider:
    """Static analysis in a worker thread (parsing and linting block)."""

    name = "offline"

    async def run(self, request: AIRequest) -> AIResult:
        """Analyse the request's source for its task."""
        return await asyncio.to_thread(analyse_request, request)


def analyse_request(request: AIRequest) -> AIResult:
    """The offline answer to a request (synchronous)."""
    facts = analyse(request.source, request.language)
    tasks = {"generate-summary": _summary, "explain": _explain, "refactor": _refactor, "fix": _fix}
    text, findings, extra = tasks[request.task](request, facts)
    details = {"language": facts.language, "lines": facts.lines, **extra}
    return AIResult(request.task, request.path, OfflineProvider.name, MODEL, f"{NOTICE}\n\n{text}", findings, details)


def _symbol_line(symbol: Symbol) -> str:
    doc = f" — {symbol.doc}" if symbol.doc else ""
    return f"`{symbol.signature or symbol.name}` ({symbol.kind}, lines {symbol.start_line}-{symbol.end_line}){doc}"


def _plural(word: str, count: int) -> str:
    if count == 1:
        return word
    return word + ("es" if word.endswith(("s", "sh", "ch")) else "s")


def _overview(request: AIRequest, facts: FileFacts) -> list[str]:
    kinds: dict[str, int] = {}
    for symbol in facts.symbols:
        kinds[symbol.kind] = kinds.get(symbol.kind, 0) + 1
    counted = ", ".join(f"{n} {_plural(kind, n)}" for kind, n in sorted(kinds.items())) or "no definitions"
    name = Path(request.path).name
    return [f"**{name}**: {facts.language or 'unknown language'}, {facts.lines} lines, {counted}."]


def _summary(request: AIRequest, facts: FileFacts) -> tuple[str, list[dict[str, Any]], dict[str, Any]]:
    lines = _overview(request, facts)
    lines.append(facts.doc or "The file has no doc comment of its own.")
    if facts.imports:
        shown = ", ".join(f"`{i}`" for i in facts.imports[:10])
        more = f" and {len(facts.imports) - 10} more" if len(facts.imports) > 10 else ""
        lines.append(f"**Imports:** {shown}{more}.")
    if facts.symbols:
        lines.append("**Definitions:**")
        for symbol in facts.symbols[:MAX_LISTED]:
            indent = "  " * symbol.qualified.count(".")
            lines.append(f"{indent}- {_symbol_line(symbol)}")
        if len(facts.symbols) > MAX_LISTED:
            lines.append(f"- … and {len(facts.symbols) - MAX_LISTED} more")
    symbols = [{"name": s.qualified, "kind": s.kind, "line": s.start_line} for s in facts.symbols]
    return "\n\n".join(lines[:3]) + "\n\n" + "\n".join(lines[3:]), [], {"imports": facts.imports, "symbols": symbols}


def _explain(request: AIRequest, facts: FileFacts) -> tuple[str, list[dict[str, Any]], dict[str, Any]]:
    if request.symbol:
        symbol = facts.symbol(request.symbol)
        if symbol is None:
            names = ", ".join(f"`{s.qualified}`" for s in facts.symbols[:20]) or "none"
            return f"No definition named `{request.symbol}` in this file. Definitions: {names}.", [], {}
        return _explain_symbol(symbol, facts), [], {"symbol": symbol.qualified}
    lines = [*_overview(request, facts), facts.doc or "The file has no doc comment of its own."]
    busiest = sorted(facts.functions, key=lambda f: (-f.decisions, f.symbol.start_line))[:5]
    if busiest:
        lines.append("**Where the logic is** (most decision points first):")
        lines.extend(f"- {_function_line(f)}" for f in busiest)
    return "\n\n".join(lines[:2]) + "\n\n" + "\n".join(lines[2:]), [], {}


def _function_line(facts: FunctionFacts) -> str:
    return (
        f"`{facts.symbol.qualified}` (lines {facts.symbol.start_line}-{facts.symbol.end_line}): "
        f"{facts.decisions} decision points, nesting depth {facts.max_nesting}, {facts.parameters} parameters"
    )


def _explain_symbol(symbol: Symbol, facts: FileFacts) -> str:
    lines = [f"**{symbol.qualified}** is a {symbol.kind} on lines {symbol.start_line}-{symbol.end_line}."]
    lines.append(f"Signature: `{symbol.signature}`.")
    lines.append(f"Its documentation says: {symbol.doc}" if symbol.doc else "It has no doc comment.")
    function = facts.function(symbol.qualified)
    if function is not None:
        lines.append(
            f"It takes {function.parameters} parameter(s), has {function.decisions} decision point(s) and "
            f"nests control flow {function.max_nesting} level(s) deep."
        )
        calls = ", ".join(f"`{c}`" for c in function.calls[:15])
        lines.append(f"It calls {calls}." if calls else "It calls no other functions.")
    members = [s for s in facts.symbols if s.qualified.startswith(symbol.qualified + ".")]
    if members:
        lines.append("Members: " + ", ".join(f"`{m.name}` ({m.kind})" for m in members[:MAX_LISTED]) + ".")
    return "\n\n".join(lines)


def _refactor(request: AIRequest, facts: FileFacts) -> tuple[str, list[dict[str, Any]], dict[str, Any]]:
    functions = facts.functions
    if request.symbol:
        functions = [f for f in functions if request.symbol in (f.symbol.qualified, f.symbol.name)]
    findings = [hint for f in functions for hint in _function_hints(f)]
    for duplicate in duplicated_blocks(request.source):
        where = ", ".join(str(line) for line in duplicate.lines)
        findings.append(
            {
                "line": duplicate.lines[0],
                "code": "duplicate-block",
                "message": f"{duplicate.length} lines repeated at lines {where}: extract a shared function.",
            }
        )
    findings.sort(key=lambda f: (f["line"], f["code"]))
    thresholds = (
        f"functions over {LONG_FUNCTION_LINES} lines, nesting deeper than {DEEP_NESTING - 1}, more than "
        f"{MANY_PARAMETERS} parameters or {MANY_DECISIONS} decision points, repeated blocks of lines"
    )
    if not findings:
        return f"No refactoring hints. Checked {len(functions)} function(s) for {thresholds}.", [], {}
    listed = "\n".join(f"- line {f['line']}: {f['message']}" for f in findings)
    return f"{len(findings)} hint(s) from checking for {thresholds}:\n\n{listed}", findings, {}


def _function_hints(facts: FunctionFacts) -> list[dict[str, Any]]:
    name, line = facts.symbol.qualified, facts.symbol.start_line
    hints = []
    if facts.length > LONG_FUNCTION_LINES:
        hints.append(("long-function", f"`{name}` is {facts.length} lines long: split it into steps."))
    if facts.max_nesting >= DEEP_NESTING:
        hints.append(("deep-nesting", f"`{name}` nests {facts.max_nesting} levels: return early or extract."))
    if facts.parameters > MANY_PARAMETERS:
        hints.append(("many-parameters", f"`{name}` takes {facts.parameters} parameters: group them in an object."))
    if facts.decisions > MANY_DECISIONS:
        hints.append(("complex-function", f"`{name}` has {facts.decisions} decision points: simplify or split."))
    return [{"line": line, "code": code, "message": message, "symbol": name} for code, message in hints]


def _fix(request: AIRequest, facts: FileFacts) -> tuple[str, list[dict[str, Any]], dict[str, Any]]:
    report = LintReport()
    if facts.language == "python":
        check_python_compiles(request.source, request.path, report)
        run_ruff(Path(request.path), report)
    elif facts.syntax_errors or facts.symbols or facts.language:
        syntax_findings(facts.syntax_errors, facts.language, report)
    report.findings.sort(key=lambda f: (f["line"], f["code"]))
    ran = ", ".join(report.tools) or "none (no checker for this language)"
    missing = f" Could not run: {', '.join(report.unavailable)}." if report.unavailable else ""
    lines = [f"Checks run: {ran}.{missing}"]
    if report.findings:
        lines.append("\n".join(f"- line {f['line']}: {f['code']} {f['message']}" for f in report.findings))
    else:
        lines.append("No problems found.")
    if report.diff:
        lines.append(f"Fixes ruff can apply (`ruff check --fix`), not applied:\n\n```diff\n{report.diff}```")
    return "\n\n".join(lines), report.findings, {"checks": report.tools, "unavailable": report.unavailable}
