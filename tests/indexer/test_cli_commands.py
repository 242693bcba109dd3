"""`conveyor index`, `conveyor search` and `conveyor ai summarize|show`, mounted as `conveyor.cli.main` mounts
them, against a worker process."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from conveyor.cli import index_commands
from conveyor.indexer import CodeIndex

ROOT = Path(__file__).resolve().parents[2]
APP = "tests.indexer.cli_app:create_app"


def _cli() -> typer.Typer:
    cli = typer.Typer()
    cli.command()(index_commands.index)
    cli.command(context_settings=index_commands.SEARCH_CONTEXT)(index_commands.search)
    cli.command()(index_commands.embed)
    cli.add_typer(index_commands.ai_cli, name="ai")
    return cli


@pytest.fixture
def env(redis_url: str, tmp_path: Path) -> dict[str, str]:
    data = str(tmp_path / "data")
    return {"REDIS_URL": redis_url, "CONVEYOR_DATA_DIR": data, "CONVEYOR_APP": APP, "COLUMNS": "250"}


@pytest.fixture
def worker(env: dict[str, str]) -> Iterator[subprocess.Popen[bytes]]:
    environment = {**os.environ, **env, "PYTHONPATH": str(ROOT), "CONVEYOR_SHUTDOWN_GRACE_S": "2"}
    proc = subprocess.Popen([sys.executable, "-m", "tests.indexer.cli_app"], env=environment, cwd=ROOT)
    yield proc
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def test_index_then_search_then_summarize_and_show(
    env: dict[str, str], worker: subprocess.Popen[bytes], repo: Path
) -> None:
    runner = CliRunner()
    indexed = runner.invoke(_cli(), ["index", str(repo)], env=env)
    assert indexed.exit_code == 0, indexed.output
    assert "Indexed 8 file(s); 0 unchanged, 0 removed, 0 failed" in indexed.output

    found = runner.invoke(_cli(), ["search", "InvoiceCalculator", "--limit", "3"], env=env)
    assert found.exit_code == 0, found.output
    assert "invoice.py:6" in found.output

    summarized = runner.invoke(_cli(), ["ai", "summarize", str(repo / "billing"), str(repo / "web")], env=env)
    assert summarized.exit_code == 0, summarized.output
    assert "3 done, 0 failed" in summarized.output

    shown = runner.invoke(_cli(), ["ai", "show", str(repo / "billing" / "invoice.py")], env=env)
    assert shown.exit_code == 0, shown.output
    assert "Billing helpers." in shown.output
    assert "generate-summary" in shown.output


def test_search_without_an_index_says_how_to_make_one(env: dict[str, str]) -> None:
    result = CliRunner().invoke(_cli(), ["search", "anything"], env=env)
    assert result.exit_code == 2
    assert "run `conveyor index PATH` first" in result.output


def test_index_of_a_file_is_a_usage_error(env: dict[str, str], repo: Path) -> None:
    result = CliRunner().invoke(_cli(), ["index", str(repo / "README.md")], env=env)
    assert result.exit_code == 2
    assert "not a folder" in result.output


def test_search_takes_a_query_that_starts_with_a_dash(env: dict[str, str], tmp_path: Path) -> None:
    source = tmp_path / "mail.py"
    source.write_text("def send(message):\n    return message\n\n\nqueue.remove(-send)\n")
    index_path = tmp_path / "index.sqlite"
    code_index = CodeIndex(index_path)
    code_index.index_file(source)
    code_index.close()
    runner, options = CliRunner(), ["--index", str(index_path), "--json"]
    for args in (["search", "-send", *options], ["search", *options, "--", "-send"]):
        result = runner.invoke(_cli(), args, env=env)
        assert result.exit_code == 0, result.output
        assert '"line": 1' in result.output
    regex = runner.invoke(_cli(), ["search", r"\(-send\)", "--mode", "regex", *options], env=env)
    assert regex.exit_code == 0, regex.output
    assert '"line": 5' in regex.output


def test_semantic_search_says_how_to_embed_then_finds_by_meaning_after_conveyor_embed(
    env: dict[str, str], tmp_path: Path
) -> None:
    pytest.importorskip("wordllama")
    source = tmp_path / "cards.py"
    source.write_text('def shuffle_deck(cards):\n    """Randomly reorder the playing cards."""\n')
    index_path = tmp_path / "index.sqlite"
    code_index = CodeIndex(index_path)
    code_index.index_file(source)
    code_index.close()
    runner, options = CliRunner(), ["--index", str(index_path)]
    before = runner.invoke(_cli(), ["search", "put cards in random order", "--semantic", *options], env=env)
    assert before.exit_code == 2
    assert "conveyor embed" in before.output
    embedded = runner.invoke(_cli(), ["embed", *options], env=env)
    assert embedded.exit_code == 0, embedded.output
    assert "Embedded 1 symbols" in embedded.output
    for mode in (["--semantic"], ["--mode", "semantic"]):
        found = runner.invoke(_cli(), ["search", "put cards in random order", *mode, *options, "--json"], env=env)
        assert found.exit_code == 0, found.output
        assert '"symbol": "shuffle_deck"' in found.output
