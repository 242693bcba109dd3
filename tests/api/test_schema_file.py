"""The committed `schema.graphql` is the schema the code serves."""

from __future__ import annotations

from pathlib import Path

from conveyor.api import schema
from conveyor.api.schema import schema_sdl

SCHEMA_FILE = Path(schema.__file__).with_name("schema.graphql")


def test_schema_file_matches_the_code() -> None:
    regenerate = f"regenerate it: python -m conveyor.api > {SCHEMA_FILE}"
    assert SCHEMA_FILE.read_text() == schema_sdl(), regenerate


def test_schema_has_the_design_notes_operations() -> None:
    sdl = schema_sdl()
    for signature in (
        "queues: [Queue!]!",
        "queue(name: String!): Queue",
        "recentJobs(queueName: String!, limit: Int! = 20): [Job!]!",
        "addJob(queueName: String!, type: String!, data: JSON = null, options: JobOptionsInput = null): Job!",
        "pauseQueue(name: String!): Boolean!",
        "resumeQueue(name: String!): Boolean!",
        "queueStats(queueName: String!): Queue!",
    ):
        assert signature in sdl, signature
