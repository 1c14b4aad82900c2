"""Per-learner progress in SQLite: sessions, attempts with their scores, recordings.

One file holds every learner (``~/.cache/duetto/tutor/progress.sqlite`` unless given); each
attempt keeps the whole assessment as JSON so reports can look at phones and words later.
"""

from __future__ import annotations

import json
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path

from duetto.errors import DuettoError

SCHEMA = """
CREATE TABLE IF NOT EXISTS learners (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    created REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS sessions (
    id INTEGER PRIMARY KEY,
    learner_id INTEGER NOT NULL REFERENCES learners(id),
    started REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS attempts (
    id INTEGER PRIMARY KEY,
    session_id INTEGER NOT NULL REFERENCES sessions(id),
    at REAL NOT NULL,
    sentence TEXT NOT NULL,
    level INTEGER NOT NULL,
    accuracy REAL, completeness REAL, fluency REAL, prosody REAL, total REAL,
    words_per_minute REAL, pause_count INTEGER, pause_seconds REAL,
    assessment TEXT NOT NULL,
    recording TEXT
);
CREATE INDEX IF NOT EXISTS attempts_session ON attempts(session_id);
"""


@dataclass(frozen=True)
class Attempt:
    id: int
    session: int
    at: float
    sentence: str
    level: int
    accuracy: float
    completeness: float
    fluency: float
    prosody: float
    total: float
    words_per_minute: float
    pause_count: int
    pause_seconds: float
    assessment: dict
    recording: str | None


class LearnerNotFoundError(DuettoError):
    code = "learner_not_found"
    http_status = 404


def default_path() -> Path:
    from duetto.models import cache_dir

    path = cache_dir() / "tutor"
    path.mkdir(parents=True, exist_ok=True)
    return path / "progress.sqlite"


class Progress:
    """The progress store; safe to open from several processes (SQLite's own locking)."""

    def __init__(self, path: str | Path | None = None):
        self.path = Path(path) if path else default_path()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.db = sqlite3.connect(self.path, timeout=10)
        self.db.executescript(SCHEMA)

    def close(self) -> None:
        self.db.close()

    def learner_id(self, name: str, create: bool = True) -> int:
        name = name.strip()
        if not name:
            raise DuettoError("the learner name is empty", "give --learner NAME")
        row = self.db.execute("SELECT id FROM learners WHERE name = ?", (name,)).fetchone()
        if row:
            return row[0]
        if not create:
            known = ", ".join(self.learners()) or "none yet"
            raise LearnerNotFoundError(f"no learner named '{name}'", f"known learners: {known}")
        with self.db:
            cur = self.db.execute(
                "INSERT INTO learners(name, created) VALUES (?, ?)", (name, time.time())
            )
        return int(cur.lastrowid)

    def learners(self) -> list[str]:
        return [r[0] for r in self.db.execute("SELECT name FROM learners ORDER BY name")]

    def start_session(self, learner: str) -> int:
        lid = self.learner_id(learner)
        with self.db:
            cur = self.db.execute(
                "INSERT INTO sessions(learner_id, started) VALUES (?, ?)", (lid, time.time())
            )
        return int(cur.lastrowid)

    def record(
        self,
        session: int,
        sentence: str,
        level: int,
        assessment: dict,
        recording: str | None = None,
    ) -> int:
        """Store one scored attempt; returns its id."""
        u, f = assessment["utterance"], assessment["fluency"]
        with self.db:
            cur = self.db.execute(
                "INSERT INTO attempts(session_id, at, sentence, level, accuracy, completeness, fluency, prosody,"
                " total, words_per_minute, pause_count, pause_seconds, assessment, recording)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (session, time.time(), sentence, level, u["accuracy"], u["completeness"], u["fluency"],
                 u["prosody"], u["total"], f["words_per_minute"], f["pause_count"], f["pause_seconds"],
                 json.dumps(assessment), recording),
            )  # fmt: skip
        return int(cur.lastrowid)

    def attempts(self, learner: str) -> list[Attempt]:
        """All attempts of ``learner``, oldest first."""
        lid = self.learner_id(learner, create=False)
        rows = self.db.execute(
            "SELECT a.id, a.session_id, a.at, a.sentence, a.level, a.accuracy, a.completeness, a.fluency,"
            " a.prosody, a.total, a.words_per_minute, a.pause_count, a.pause_seconds, a.assessment, a.recording"
            " FROM attempts a JOIN sessions s ON s.id = a.session_id WHERE s.learner_id = ? ORDER BY a.at, a.id",
            (lid,),
        ).fetchall()
        return [Attempt(*r[:13], json.loads(r[13]), r[14]) for r in rows]
