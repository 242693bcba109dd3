"""AI results stored beside the code index (a table in the same SQLite file), queryable per file."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from conveyor.ai.provider import AIResult
from conveyor.indexer.store import CodeIndex

SCHEMA = """
CREATE TABLE IF NOT EXISTS ai_results (
    id INTEGER PRIMARY KEY,
    path TEXT NOT NULL,
    task TEXT NOT NULL,
    symbol TEXT,
    provider TEXT NOT NULL,
    model TEXT NOT NULL,
    sha256 TEXT NOT NULL,
    job_id TEXT,
    result TEXT NOT NULL,
    created_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS ai_results_by_path ON ai_results(path, task, created_at);
"""


@dataclass(frozen=True, slots=True)
class StoredResult:
    """A result as stored: the result, the content hash of the file it was made from, and when."""

    result: AIResult
    symbol: str | None
    sha256: str
    job_id: str | None
    created_at: float


class ResultStore:
    """The `ai_results` table of an index database."""

    def __init__(self, index: CodeIndex) -> None:
        self.index = index
        with index.reading() as db:
            db.executescript(SCHEMA)

    def save(self, result: AIResult, *, sha256: str, symbol: str | None = None, job_id: str | None = None) -> None:
        """Store a result (results accumulate; readers take the newest)."""
        with self.index.writing() as db:
            db.execute(
                "INSERT INTO ai_results (path, task, symbol, provider, model, sha256, job_id, result, created_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (result.path, result.task, symbol, result.provider, result.model, sha256, job_id,
                 json.dumps(result.to_json()), time.time()),
            )  # fmt: skip

    def for_file(self, path: Path | str, task: str | None = None, limit: int = 20) -> list[StoredResult]:
        """The newest results for a file (optionally of one task), newest first."""
        query = "SELECT result, symbol, sha256, job_id, created_at FROM ai_results WHERE path = ?"
        params: list[Any] = [str(Path(path).resolve())]
        if task is not None:
            query += " AND task = ?"
            params.append(task)
        query += " ORDER BY created_at DESC, id DESC LIMIT ?"
        params.append(limit)
        with self.index.reading() as db:
            rows = db.execute(query, params).fetchall()
        return [StoredResult(AIResult.from_json(json.loads(r[0])), r[1], r[2], r[3], r[4]) for r in rows]

    def latest(self, path: Path | str, task: str) -> StoredResult | None:
        """The newest result of one task for a file."""
        found = self.for_file(path, task, limit=1)
        return found[0] if found else None
