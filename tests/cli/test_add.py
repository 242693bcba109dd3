"""`conveyor add`: one job, or many from JSON Lines, each validated before anything is written."""

from __future__ import annotations

import json
from pathlib import Path

from conveyor import Conveyor, JobState
from tests.cli.conftest import Cli


async def _total(app: Conveyor) -> int:
    counts = [await app.queue(name).counts() for name in app.queue_names]
    return sum(c.pending + c.active + c.completed + c.failed for c in counts)


def test_add_prints_the_new_id_and_job_shows_the_job_with_its_options(conveyor_cli: Cli) -> None:
    added = conveyor_cli.invoke(
        "add", "indexing", "echo", '{"filePath": "src/index.ts"}',
        "--priority", "high", "--attempts", "4", "--backoff", "fixed:250", "--timeout-ms", "5000",
        "--deadline", "2099-01-01T00:00:00Z", "--job-id", "index-src",
    )  # fmt: skip
    assert added.exit_code == 0, added.output
    assert added.stdout.strip() == "index-src"

    shown = conveyor_cli.invoke("job", "indexing", "index-src", "--json")
    assert shown.exit_code == 0, shown.output
    job = json.loads(shown.stdout)
    assert (job["id"], job["type"], job["data"]) == ("index-src", "echo", {"filePath": "src/index.ts"})
    assert job["state"] == "waiting"
    assert (job["priority"], job["max_attempts"]) == (2, 4)
    assert job["options"]["backoff"] == {"type": "fixed", "delay": 250, "jitter": 0.0}
    assert job["options"]["timeout"] == 5000
    assert job["options"]["deadline"] == 4070908800000


def test_job_without_json_shows_state_type_and_data(conveyor_cli: Cli) -> None:
    job_id = conveyor_cli.invoke("add", "background", "echo", '{"marker": "xyzzy"}').stdout.strip()
    shown = conveyor_cli.invoke("job", "background", job_id)
    assert shown.exit_code == 0, shown.output
    assert f"Job {job_id}" in shown.stdout
    assert "background / echo" in shown.stdout
    assert "xyzzy" in shown.stdout


def test_add_with_delay_makes_a_delayed_job(conveyor_cli: Cli) -> None:
    job_id = conveyor_cli.invoke("add", "background", "echo", "--delay-ms", "60000").stdout.strip()
    listed = conveyor_cli.invoke("jobs", "background", "--state", "delayed", "--json")
    assert [job["id"] for job in json.loads(listed.stdout)] == [job_id]


def test_bulk_add_from_a_jsonl_file_adds_every_line_with_its_options(conveyor_cli: Cli, tmp_path: Path) -> None:
    source = tmp_path / "jobs.jsonl"
    source.write_text(
        '{"type": "echo", "data": {"n": 1}}\n'
        "\n"
        '{"type": "greet", "data": {"name": "Ada"}, "options": {"delay_ms": 60000}}\n'
        '{"type": "echo", "data": {"n": 3}, "options": {"priority": "critical", "job_id": "third"}}\n'
    )
    added = conveyor_cli.invoke("add", "background", "--bulk", str(source))
    assert added.exit_code == 0, added.output
    ids = added.stdout.split()
    assert len(ids) == 3
    assert ids[2] == "third"
    delayed = json.loads(conveyor_cli.invoke("jobs", "background", "--state", "delayed", "--json").stdout)
    assert [job["id"] for job in delayed] == [ids[1]]
    assert json.loads(conveyor_cli.invoke("job", "background", "third", "--json").stdout)["priority"] == 1


def test_bulk_add_reads_stdin_and_applies_option_flags_to_every_line(conveyor_cli: Cli) -> None:
    lines = "\n".join(json.dumps({"type": "echo", "data": {"n": n}}) for n in range(5))
    added = conveyor_cli.invoke("add", "ai-processing", "--bulk", "-", "--delay-ms", "60000", input=lines)
    assert added.exit_code == 0, added.output
    assert len(added.stdout.split()) == 5
    stats = json.loads(conveyor_cli.invoke("stats", "--json").stdout)
    assert stats["queues"]["ai-processing"]["delayed"] == 5


async def test_bulk_add_with_bad_lines_names_them_and_writes_nothing(
    conveyor_cli: Cli, app: Conveyor, tmp_path: Path
) -> None:
    source = tmp_path / "jobs.jsonl"
    source.write_text(
        '{"type": "echo", "data": {"n": 1}}\n'
        '{"type": "echo", "data": \n'
        '{"type": "greet", "data": {"nom": "Ada"}}\n'
        '{"type": "echo", "options": {"attempts": 0}}\n'
        '{"type": "echo", "data": {"n": 5}}\n'
    )
    added = await conveyor_cli.arun("add", "background", "--bulk", str(source))
    assert added.returncode == 2, added.stderr
    assert "line 2: not valid JSON" in added.stderr
    assert "line 3: Invalid payload" in added.stderr
    assert "name" in added.stderr
    assert "line 4: invalid job options (attempts" in added.stderr
    assert "line 1" not in added.stderr
    assert "line 5" not in added.stderr
    assert added.stdout == ""
    assert await _total(app) == 0


async def test_invalid_payload_is_refused_with_the_field_and_nothing_is_written(
    conveyor_cli: Cli, app: Conveyor
) -> None:
    refused = await conveyor_cli.ainvoke("add", "background", "greet", '{"times": "often"}')
    assert refused.exit_code == 2
    assert "name" in refused.stderr
    assert "times" in refused.stderr
    assert await _total(app) == 0


async def test_a_payload_with_a_lone_surrogate_is_refused_with_a_clear_error(conveyor_cli: Cli, app: Conveyor) -> None:
    """`\\ud800` is valid JSON but no character: the command says so, writes nothing and shows no traceback."""
    refused = await conveyor_cli.arun("add", "background", "echo", '{"text": "a\\ud800"}')
    assert refused.returncode == 2, refused.stderr
    assert "lone surrogate" in refused.stderr
    assert "Traceback" not in refused.stderr
    assert refused.stdout == ""
    assert await _total(app) == 0


def test_payload_model_is_applied_to_the_stored_data(conveyor_cli: Cli) -> None:
    job_id = conveyor_cli.invoke("add", "background", "greet", '{"name": "Ada"}').stdout.strip()
    job = json.loads(conveyor_cli.invoke("job", "background", job_id, "--json").stdout)
    assert job["data"] == {"name": "Ada", "times": 1}
    assert job["state"] != JobState.UNKNOWN.value


def test_bad_option_values_are_usage_errors(conveyor_cli: Cli) -> None:
    for bad in (
        ["--backoff", "linear:5"],
        ["--priority", "urgent"],
        ["--deadline", "next tuesday"],
        ["--job-id", "123"],
        ["--attempts", "0"],
    ):
        result = conveyor_cli.invoke("add", "background", "echo", *bad)
        assert result.exit_code == 2, (bad, result.output)
        assert result.stdout == ""


async def test_a_bad_standard_payload_is_refused_by_an_app_that_runs_no_handler_for_it(
    conveyor_cli: Cli, app: Conveyor
) -> None:
    """`--app conveyor:Conveyor` is a bare app: no handlers at all, yet the standard models apply."""
    refused = await conveyor_cli.arun(
        "add", "indexing", "index-file", '{"fielPath": "a.py"}', "--app", "conveyor:Conveyor"
    )
    assert refused.returncode == 2, refused.stderr
    assert "Invalid payload for indexing/index-file" in refused.stderr
    assert await _total(app) == 0
