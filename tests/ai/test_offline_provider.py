"""The offline provider: honest static analysis with stable, non-empty results for every task and language."""

from __future__ import annotations

from pathlib import Path

import pytest

from conveyor.ai.lint import find_ruff
from conveyor.ai.offline import NOTICE, analyse_request
from conveyor.ai.provider import TASKS, AIRequest
from tests.indexer import helpers

SOURCES = {
    "python": ("invoice.py", helpers.PYTHON),
    "typescript": ("dashboard.ts", helpers.TYPESCRIPT),
    "javascript": ("events.js", helpers.JAVASCRIPT),
    "go": ("kv.go", helpers.GO),
    "rust": ("ring.rs", helpers.RUST),
    "java": ("OrderService.java", helpers.JAVA),
}

MESSY = '''"""Order processing."""

import os
import json


def process(a, b, c, d, e, f, g):
    for item in a:
        if item:
            while b:
                if c:
                    try:
                        d(item)
                    except ValueError:
                        pass
    total = 0
    total = total + a.price * b.quantity - c.discount
    total = total + d.shipping_cost_for(e.country)
    total = total + f.handling_fee_for(g.weight)
    total = round(total, 2)
    print("computed order total", total)
    log_total_somewhere(total)
    total = 0
    total = total + a.price * b.quantity - c.discount
    total = total + d.shipping_cost_for(e.country)
    total = total + f.handling_fee_for(g.weight)
    total = round(total, 2)
    print("computed order total", total)
    log_total_somewhere(total)
    return json.dumps(total)
'''


def _request(task: str, language: str, tmp_path: Path, symbol: str | None = None) -> AIRequest:
    name, source = SOURCES[language]
    path = tmp_path / name
    path.write_text(source)
    return AIRequest(task, str(path), language, source, symbol)


@pytest.mark.parametrize("language", sorted(SOURCES))
@pytest.mark.parametrize("task", TASKS)
def test_every_task_gives_a_stable_non_empty_result_that_says_it_is_static_analysis(
    task: str, language: str, tmp_path: Path
) -> None:
    request = _request(task, language, tmp_path)
    first, second = analyse_request(request), analyse_request(request)
    assert first == second
    assert first.text.startswith(NOTICE)
    assert len(first.text) > len(NOTICE) + 20
    assert (first.provider, first.model, first.task) == ("offline", "static-analysis", task)


def test_summary_is_built_from_docstrings_signatures_and_imports(tmp_path: Path) -> None:
    result = analyse_request(_request("generate-summary", "python", tmp_path))
    assert "Billing helpers." in result.text
    assert "`import decimal`" in result.text
    assert "`def total_with_tax(self, amount, rate)`" in result.text
    assert "Computes invoice totals." in result.text
    assert result.details["symbols"][0] == {"name": "InvoiceCalculator", "kind": "class", "line": 6}


def test_summary_of_other_languages_uses_their_doc_comments(tmp_path: Path) -> None:
    result = analyse_request(_request("generate-summary", "typescript", tmp_path))
    assert "Renders dashboard widgets." in result.text
    assert "DashboardRenderer" in result.text


def test_explain_describes_a_definition_and_what_it_calls(tmp_path: Path) -> None:
    result = analyse_request(_request("explain", "javascript", tmp_path, symbol="dispatchMessage"))
    assert "**dispatchMessage** is a function on lines 7-9" in result.text
    assert "2 parameter(s)" in result.text
    explain_go = analyse_request(_request("explain", "go", tmp_path, symbol="KeyValueStore"))
    assert "`LookupKey` (method)" in explain_go.text


def test_explain_of_an_unknown_symbol_lists_the_ones_that_exist(tmp_path: Path) -> None:
    result = analyse_request(_request("explain", "rust", tmp_path, symbol="nope"))
    assert "No definition named `nope`" in result.text
    assert "`RingBuffer.push_sample`" in result.text


def test_refactor_hints_come_from_length_nesting_parameters_and_duplicated_blocks(tmp_path: Path) -> None:
    path = tmp_path / "orders.py"
    path.write_text(MESSY)
    result = analyse_request(AIRequest("refactor", str(path), "python", MESSY))
    codes = {finding["code"] for finding in result.findings}
    assert codes == {"deep-nesting", "many-parameters", "duplicate-block"}
    duplicate = next(f for f in result.findings if f["code"] == "duplicate-block")
    assert duplicate["line"] == 16
    assert "lines 16, 23" in duplicate["message"]


def test_refactor_of_tidy_code_says_what_was_checked(tmp_path: Path) -> None:
    result = analyse_request(_request("refactor", "java", tmp_path))
    assert result.findings == []
    assert "No refactoring hints" in result.text


def test_fix_reports_python_syntax_errors_from_the_compiler(tmp_path: Path) -> None:
    source = "def broken(:\n    pass\n"
    path = tmp_path / "broken.py"
    path.write_text(source)
    result = analyse_request(AIRequest("fix", str(path), "python", source))
    assert any(f["code"] == "E999" and f["line"] == 1 for f in result.findings)
    assert "python compile" in result.details["checks"]


@pytest.mark.skipif(find_ruff() is None, reason="ruff is not installed")
def test_fix_runs_ruff_and_offers_its_fixes_as_a_diff_without_changing_the_file(tmp_path: Path) -> None:
    path = tmp_path / "orders.py"
    path.write_text(MESSY)
    result = analyse_request(AIRequest("fix", str(path), "python", MESSY))
    unused = [f for f in result.findings if f["code"] == "F401"]
    assert [f["line"] for f in unused] == [3]  # `import os`
    assert "ruff" in result.details["checks"]
    assert "-import os" in result.text
    assert path.read_text() == MESSY


def test_fix_reports_parse_errors_in_other_languages(tmp_path: Path) -> None:
    source = "function ok() { return 1; }\nfunction broken( {\n"
    path = tmp_path / "broken.js"
    path.write_text(source)
    result = analyse_request(AIRequest("fix", str(path), "javascript", source))
    assert result.findings
    assert all(f["tool"] == "tree-sitter" for f in result.findings)
    assert "No problems found" not in result.text
