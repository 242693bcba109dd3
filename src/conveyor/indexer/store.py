"""The code index: files, symbols and content in one SQLite database with FTS5, updated incrementally.

One database file per index. Content is stored as FTS5 rows of `CHUNK_LINES` lines each, keyed by
`file_id << 20 | block number`, so a file's rows are one rowid range (cheap to delete) and a block's first line
follows from its rowid. `chunk_grams` indexes the same blocks by trigrams for substring and regex search (it
reads their text from `chunk_text`, so the text is stored once). Several worker threads and processes may
write the same index: SQLite's WAL mode lets readers continue while one writer commits, and a busy timeout
makes writers queue instead of failing.
"""

from __future__ import annotations

import hashlib
import logging
import os
import sqlite3
import stat
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from conveyor.indexer.budget import DEFAULT_SEARCH_TIMEOUT_S, SearchBudget
from conveyor.indexer.errors import IndexMissingError, IndexUnavailableError, SearchQueryError
from conveyor.indexer.generated import looks_generated, looks_minified
from conveyor.indexer.grep import text_search
from conveyor.indexer.hits import Hit
from conveyor.indexer.languages import detect_language
from conveyor.indexer.outcomes import BINARY, INDEXED, MINIFIED, NOT_A_FILE, UNCHANGED, outcome_of_error
from conveyor.indexer.query import SearchMode, inside_words, parse_query
from conveyor.indexer.search import word_search
from conveyor.indexer.symbols import Symbol, extract_symbols
from conveyor.indexer.text import chunk_lines, identifier_terms, split_identifier
from conveyor.indexer.walker import DEFAULT_MAX_FILE_BYTES, SNIFF_BYTES, absolute, is_binary, skip_reason

log = logging.getLogger(__name__)

CHUNK_BITS = 20  # up to 2^20 blocks per file: far more than a file under the size limit can have
BUSY_TIMEOUT_S = 60.0
SCHEMA = """
CREATE TABLE IF NOT EXISTS files (
    id INTEGER PRIMARY KEY,
    path TEXT NOT NULL UNIQUE,
    language TEXT,
    sha256 TEXT NOT NULL,
    size INTEGER NOT NULL,
    mtime_ns INTEGER NOT NULL,
    lines INTEGER NOT NULL,
    indexed_at REAL NOT NULL,
    generated INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS symbols (
    id INTEGER PRIMARY KEY,
    file_id INTEGER NOT NULL REFERENCES files(id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    kind TEXT NOT NULL,
    qualified TEXT NOT NULL,
    start_line INTEGER NOT NULL,
    end_line INTEGER NOT NULL,
    signature TEXT NOT NULL,
    doc TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS symbols_by_file ON symbols(file_id, start_line);
CREATE INDEX IF NOT EXISTS symbols_by_name ON symbols(name COLLATE NOCASE);
CREATE VIRTUAL TABLE IF NOT EXISTS symbol_text USING fts5(terms, signature, doc);
CREATE VIRTUAL TABLE IF NOT EXISTS chunk_text USING fts5(body, terms);
"""
# detail=none: no positions, a third smaller and faster to write; LIKE still narrows through it, and candidate
# lines are verified anyway.
GRAMS_TABLE = (
    "CREATE VIRTUAL TABLE chunk_grams USING fts5(body, content='chunk_text', tokenize='trigram', detail='none')"
)


@dataclass(frozen=True, slots=True)
class IndexOutcome:
    """What `index_file` did: `status` is one of the outcomes of `conveyor.indexer.outcomes` (`indexed`,
    `unchanged`, `vanished`, a reason it was skipped, or a failure such as `unreadable`)."""

    path: str
    status: str
    language: str | None = None
    symbols: int = 0
    mtime_ns: int | None = None


@dataclass(frozen=True, slots=True)
class FileRecord:
    """An indexed file as stored."""

    path: str
    language: str | None
    sha256: str
    size: int
    mtime_ns: int
    lines: int
    indexed_at: float
    generated: bool = False


@dataclass(frozen=True, slots=True)
class IndexStats:
    """How much an index holds."""

    files: int
    symbols: int
    bytes_on_disk: int


class CodeIndex:
    """One code index database. Safe to share between threads; open one per process and reuse it.

    Paths are stored absolute and resolved, so the same file indexed from two working directories is one
    entry. With `create=False` a missing database is an `IndexMissingError` instead of a new empty index
    (searching never creates one).
    """

    def __init__(
        self,
        path: Path,
        *,
        max_file_bytes: int = DEFAULT_MAX_FILE_BYTES,
        search_timeout_s: float = DEFAULT_SEARCH_TIMEOUT_S,
        create: bool = True,
    ) -> None:
        self.path = path
        self.max_file_bytes = max_file_bytes
        self.search_timeout_s = search_timeout_s
        self._lock = threading.Lock()
        if not create and not path.is_file():
            raise IndexMissingError(path)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(path, timeout=BUSY_TIMEOUT_S, isolation_level=None, check_same_thread=False)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.execute("PRAGMA foreign_keys=ON")
            self._db.executescript(SCHEMA)  # idempotent; each statement commits on its own
            self._upgrade()
        except (sqlite3.Error, OSError) as exc:
            raise IndexUnavailableError(path, str(exc)) from exc

    def _upgrade(self) -> None:
        """Bring an index written by an earlier version up to this schema (once; concurrent openers queue, and
        an index that is up to date is only read, so a read-only one still opens)."""
        if not self._outdated(self._db):
            return
        with self._write() as db:
            if "generated" not in {row[1] for row in db.execute("PRAGMA table_info(files)")}:
                db.execute("ALTER TABLE files ADD COLUMN generated INTEGER NOT NULL DEFAULT 0")
            if db.execute("SELECT 1 FROM sqlite_master WHERE name = 'chunk_grams'").fetchone() is None:
                db.execute(GRAMS_TABLE)
                # FTS5's 'rebuild' cannot read an FTS5 content table; copying the rows does the same.
                db.execute("INSERT INTO chunk_grams (rowid, body) SELECT rowid, body FROM chunk_text")

    @staticmethod
    def _outdated(db: sqlite3.Connection) -> bool:
        columns = {row[1] for row in db.execute("PRAGMA table_info(files)")}
        grams = db.execute("SELECT 1 FROM sqlite_master WHERE name = 'chunk_grams'").fetchone()
        return "generated" not in columns or grams is None

    def close(self) -> None:
        """Close the database connection."""
        with self._lock:
            self._db.close()

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """One write transaction, taken up front (`BEGIN IMMEDIATE`) so concurrent writers queue on the busy
        timeout instead of failing on a lock upgrade."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    @contextmanager
    def reading(self) -> Iterator[sqlite3.Connection]:
        """The connection, for a consistent read (other packages keep their own tables in this database)."""
        with self._lock:
            yield self._db

    @contextmanager
    def writing(self) -> Iterator[sqlite3.Connection]:
        """A write transaction on the connection (for tables kept beside the index, e.g. AI results)."""
        with self._write() as db:
            yield db

    # --- writing -------------------------------------------------------------------------------------

    def index_file(self, path: Path, *, force: bool = False) -> IndexOutcome:
        """Index one file; unchanged content (same SHA-256) is skipped unless `force`.

        Every per-file problem is an outcome, not an exception (see `conveyor.indexer.outcomes`): a file that
        vanished, cannot be read, is a symlink loop, or is (now) binary, empty, too large or minified is not
        indexed, and any earlier entry of it leaves the index.
        """
        read = self._read(path)
        if isinstance(read, IndexOutcome):
            self.remove(read.path)
            return read
        key, info, data = read
        text = data.decode("utf-8", "replace")
        if looks_minified(Path(key), text):
            self.remove(key)
            return IndexOutcome(key, MINIFIED)
        digest = hashlib.sha256(data).hexdigest()
        language = detect_language(key)
        if not force and self._unchanged(key, digest, info.st_mtime_ns):
            return IndexOutcome(key, UNCHANGED, language, mtime_ns=info.st_mtime_ns)
        symbols = extract_symbols(data, language)
        generated = looks_generated(Path(key), text)
        lines = text.count("\n") + 1
        record = FileRecord(key, language, digest, info.st_size, info.st_mtime_ns, lines, time.time(), generated)
        self._store(record, symbols, chunk_lines(text))
        return IndexOutcome(key, INDEXED, language, len(symbols), info.st_mtime_ns)

    def _read(self, path: Path) -> tuple[str, os.stat_result, bytes] | IndexOutcome:
        """The file's key, stat and bytes, or the outcome that says why it is not indexed."""
        key = path_key(path)
        try:
            resolved = path.resolve()
            info = resolved.stat()
            if not stat.S_ISREG(info.st_mode):
                return IndexOutcome(key, NOT_A_FILE)
            reason = skip_reason(resolved, info.st_size, self.max_file_bytes)
            if reason is not None:
                return IndexOutcome(key, reason)
            data = resolved.read_bytes()
        except (OSError, RuntimeError) as exc:  # RuntimeError: Python 3.11's resolve() meeting a symlink loop
            return IndexOutcome(key, outcome_of_error(exc))
        if is_binary(data[:SNIFF_BYTES]):
            return IndexOutcome(key, BINARY)
        return key, info, data

    def _unchanged(self, key: str, digest: str, mtime_ns: int) -> bool:
        with self._lock:
            row = self._db.execute("SELECT sha256, mtime_ns FROM files WHERE path = ?", (key,)).fetchone()
        if row is None or row[0] != digest:
            return False
        if row[1] != mtime_ns:  # touched but not changed: remember the new mtime for the next full index
            with self._write() as db:
                db.execute("UPDATE files SET mtime_ns = ? WHERE path = ?", (mtime_ns, key))
        return True

    def _store(self, record: FileRecord, symbols: list[Symbol], chunks: list[str]) -> None:
        with self._write() as db:
            row = db.execute("SELECT id FROM files WHERE path = ?", (record.path,)).fetchone()
            if row is not None:
                _delete_content(db, int(row[0]))
                db.execute("DELETE FROM files WHERE id = ?", (row[0],))
            cursor = db.execute(
                "INSERT INTO files (path, language, sha256, size, mtime_ns, lines, indexed_at, generated) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (record.path, record.language, record.sha256, record.size, record.mtime_ns, record.lines,
                 record.indexed_at, int(record.generated)),
            )  # fmt: skip
            file_id = int(cursor.lastrowid or 0)
            for symbol in symbols:
                cursor = db.execute(
                    "INSERT INTO symbols (file_id, name, kind, qualified, start_line, end_line, signature, doc) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    (file_id, symbol.name, symbol.kind, symbol.qualified, symbol.start_line, symbol.end_line,
                     symbol.signature, symbol.doc),
                )  # fmt: skip
                terms = " ".join(dict.fromkeys([symbol.name, symbol.qualified, *split_identifier(symbol.name)]))
                db.execute(
                    "INSERT INTO symbol_text (rowid, terms, signature, doc) VALUES (?, ?, ?, ?)",
                    (cursor.lastrowid, terms, symbol.signature, symbol.doc),
                )
            rows = [((file_id << CHUNK_BITS) | n, body) for n, body in enumerate(chunks)]
            db.executemany(
                "INSERT INTO chunk_text (rowid, body, terms) VALUES (?, ?, ?)",
                [(rowid, body, identifier_terms(body)) for rowid, body in rows],
            )
            db.executemany("INSERT INTO chunk_grams (rowid, body) VALUES (?, ?)", rows)

    def remove(self, path: Path | str) -> str | None:
        """Take a file out of the index; returns its path if it was indexed."""
        key = path_key(Path(path))
        with self._write() as db:
            row = db.execute("SELECT id FROM files WHERE path = ?", (key,)).fetchone()
            if row is None:
                return None
            _delete_content(db, int(row[0]))
            db.execute("DELETE FROM files WHERE id = ?", (row[0],))
        return key

    def prune(self, root: Path, keep: set[str]) -> list[str]:
        """Remove every indexed file under `root` whose path is not in `keep`; returns the removed paths."""
        stale = [path for path in self.known_files(root) if path not in keep]
        for path in stale:
            self.remove(path)
        return stale

    # --- reading -------------------------------------------------------------------------------------

    def known_files(self, root: Path) -> dict[str, FileRecord]:
        """The indexed files under a folder, by path."""
        prefix = str(root.resolve()).rstrip("/") + "/"
        with self._lock:
            rows = self._db.execute(
                "SELECT path, language, sha256, size, mtime_ns, lines, indexed_at, generated FROM files "
                "WHERE substr(path, 1, ?) = ?",
                (len(prefix), prefix),
            ).fetchall()
        return {row[0]: FileRecord(*row) for row in rows}

    def file(self, path: Path | str) -> FileRecord | None:
        """The stored record of one file, if indexed."""
        with self._lock:
            row = self._db.execute(
                "SELECT path, language, sha256, size, mtime_ns, lines, indexed_at, generated FROM files WHERE path = ?",
                (str(Path(path).resolve()),),
            ).fetchone()
        return FileRecord(*row) if row else None

    def symbols(self, path: Path | str) -> list[Symbol]:
        """The symbols of one indexed file, in source order."""
        with self._lock:
            rows = self._db.execute(
                "SELECT s.name, s.kind, s.qualified, s.start_line, s.end_line, s.signature, s.doc "
                "FROM symbols s JOIN files f ON f.id = s.file_id WHERE f.path = ? ORDER BY s.start_line, s.id",
                (str(Path(path).resolve()),),
            ).fetchall()
        return [Symbol(*row) for row in rows]

    def search(self, query: str, limit: int = 20, *, mode: SearchMode | str = SearchMode.LEXICAL) -> list[Hit]:
        """Ranked hits (file, line, symbol, score, snippet) for a query read in `mode` (see
        `conveyor.indexer.query`), best first.

        Raises:
            SearchQueryError: the query is too long, has too many words, or is an unusable regex.
            SearchTimeoutError: the search ran past `search_timeout_s`.
        """
        if limit <= 0 or not query.strip():
            return []
        parsed = parse_query(query, mode)  # refused before any work when out of bounds
        if parsed.mode.uses_vectors:
            raise SearchQueryError(
                f"`{parsed.mode}` search needs an embedder: use `conveyor.indexer.semantic.search_code`."
            )
        budget = SearchBudget(self.search_timeout_s)
        with self._lock, budget.guarding(self._db):
            if not parsed.is_lexical:
                return text_search(self._db, parsed, limit, chunk_bits=CHUNK_BITS, budget=budget)
            hits = word_search(self._db, parsed, limit, chunk_bits=CHUNK_BITS)
            inside = None if hits else inside_words(parsed)
            if inside is None:
                return hits
            return text_search(self._db, inside, limit, chunk_bits=CHUNK_BITS, budget=budget)

    def stats(self) -> IndexStats:
        """Counts of files and symbols, and the database's size on disk."""
        with self._lock:
            files = int(self._db.execute("SELECT count(*) FROM files").fetchone()[0])
            symbols = int(self._db.execute("SELECT count(*) FROM symbols").fetchone()[0])
        size = sum(p.stat().st_size for p in self.path.parent.glob(self.path.name + "*") if p.is_file())
        return IndexStats(files, symbols, size)

    # --- maintenance ---------------------------------------------------------------------------------

    def optimize(self, *, vacuum: bool = False) -> IndexStats:
        """Merge the FTS5 segments, refresh the query planner's statistics and, with `vacuum`, rewrite the
        file to reclaim the space of deleted rows. Returns the stats afterwards."""
        with self._write() as db:
            db.execute("INSERT INTO chunk_text (chunk_text) VALUES ('optimize')")
            db.execute("INSERT INTO symbol_text (symbol_text) VALUES ('optimize')")
            db.execute("INSERT INTO chunk_grams (chunk_grams) VALUES ('optimize')")
        with self._lock:
            self._db.execute("PRAGMA optimize")
            if vacuum:
                self._db.execute("VACUUM")
            self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        return self.stats()

    def prune_missing(self) -> list[str]:
        """Remove entries whose files no longer exist on disk (missed deletions); returns their paths."""
        with self._lock:
            paths = [row[0] for row in self._db.execute("SELECT path FROM files").fetchall()]
        gone = [path for path in paths if not Path(path).is_file()]
        for path in gone:
            self.remove(path)
        return gone


def path_key(path: Path) -> str:
    """The stored key of a path: resolved, or only made absolute when it cannot be resolved (a loop)."""
    try:
        return str(path.resolve())
    except (OSError, RuntimeError):
        return str(absolute(path))


def _delete_content(db: sqlite3.Connection, file_id: int) -> None:
    db.execute("DELETE FROM symbol_text WHERE rowid IN (SELECT id FROM symbols WHERE file_id = ?)", (file_id,))
    db.execute("DELETE FROM symbols WHERE file_id = ?", (file_id,))
    low, high = file_id << CHUNK_BITS, (file_id << CHUNK_BITS) + (1 << CHUNK_BITS) - 1
    # An external-content FTS5 table forgets a row when told its old text, so this comes first.
    db.execute(
        "INSERT INTO chunk_grams (chunk_grams, rowid, body) "
        "SELECT 'delete', rowid, body FROM chunk_text WHERE rowid BETWEEN ? AND ?",
        (low, high),
    )
    db.execute("DELETE FROM chunk_text WHERE rowid BETWEEN ? AND ?", (low, high))
