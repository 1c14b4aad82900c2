"""Speech manifests: JSON Lines, one utterance per line.

Each line holds ``id``, ``audio`` (a path relative to the manifest's folder, or absolute),
``text`` and optionally ``speaker``, ``age``, ``gender``, ``duration`` and any other metadata,
which is kept as it is. The layout is that of ``../shared/data/speechocean762/dev.jsonl``.

Bad lines (not JSON, no ``id`` or ``audio``) and audio files that are missing are reported with
their line number and skipped; the run goes on and the caller prints the count at the end.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from duetto.errors import DuettoError

REQUIRED = ("id", "audio")
KNOWN = ("id", "audio", "text", "speaker", "age", "gender", "duration")


@dataclass(frozen=True)
class Utterance:
    """One manifest row; ``audio`` is resolved to an absolute path."""

    id: str
    audio: Path
    text: str = ""
    speaker: str = ""
    age: int | None = None
    gender: str = ""
    duration: float | None = None
    line: int = 0
    extra: dict[str, Any] = field(default_factory=dict, compare=False)

    def to_row(self, base: Path | None = None, **updates: Any) -> dict[str, Any]:
        """The manifest row, ``audio`` relative to ``base`` where it lies below it."""
        audio = Path(updates.pop("audio", self.audio))
        if base is not None:
            try:
                audio = audio.resolve().relative_to(base.resolve())
            except ValueError:
                pass
        row: dict[str, Any] = {"id": self.id, "audio": str(audio), "text": self.text}
        for key in ("speaker", "age", "gender", "duration"):
            value = getattr(self, key)
            if value not in ("", None):
                row[key] = value
        row.update(self.extra)
        row.update(updates)
        return row


@dataclass(frozen=True)
class Problem:
    """A manifest line or audio file that could not be used."""

    path: Path
    line: int
    message: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.message}"


@dataclass
class Manifest:
    """The usable utterances of a manifest file and the problems met reading it."""

    path: Path
    utterances: list[Utterance]
    problems: list[Problem] = field(default_factory=list)

    def __iter__(self) -> Iterator[Utterance]:
        return iter(self.utterances)

    def __len__(self) -> int:
        return len(self.utterances)

    def speakers(self) -> list[str]:
        return sorted({u.speaker for u in self.utterances})


def read_manifest(path: str | Path, check_audio: bool = True) -> Manifest:
    """Read a JSONL manifest; bad lines and missing audio files become :class:`Problem` s.

    Raises :class:`DuettoError` when the manifest itself cannot be read.
    """
    path = Path(path)
    if not path.is_file():
        raise DuettoError(
            f"manifest not found: {path}", "give a .jsonl file with one utterance per line"
        )
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise DuettoError(
            f"cannot read manifest {path}: {exc}", "it must be UTF-8 JSON Lines"
        ) from None
    base = path.parent
    utterances: list[Utterance] = []
    problems: list[Problem] = []
    seen: set[str] = set()
    for number, text in enumerate(lines, 1):
        if not text.strip():
            continue
        try:
            utt = _parse_line(text, number, base)
        except ValueError as exc:
            problems.append(Problem(path, number, str(exc)))
            continue
        if utt.id in seen:
            problems.append(Problem(path, number, f"duplicate id '{utt.id}'"))
            continue
        if check_audio and not utt.audio.is_file():
            problems.append(Problem(path, number, f"audio file not found: {utt.audio}"))
            continue
        seen.add(utt.id)
        utterances.append(utt)
    return Manifest(path, utterances, problems)


def _parse_line(text: str, number: int, base: Path) -> Utterance:
    try:
        row = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"not valid JSON ({exc.msg})") from None
    if not isinstance(row, dict):
        raise ValueError("a line must be a JSON object")
    missing = [k for k in REQUIRED if not row.get(k)]
    if missing:
        raise ValueError(f"missing field(s): {', '.join(missing)}")
    audio = Path(str(row["audio"]))
    if not audio.is_absolute():
        audio = base / audio
    age = row.get("age")
    if age is not None and not isinstance(age, int | float):
        raise ValueError(f"age must be a number, got {age!r}")
    duration = row.get("duration")
    if duration is not None and not isinstance(duration, int | float):
        raise ValueError(f"duration must be a number, got {duration!r}")
    return Utterance(
        id=str(row["id"]),
        audio=audio,
        text=str(row.get("text") or ""),
        speaker=str(row.get("speaker") or ""),
        age=int(age) if age is not None else None,
        gender=str(row.get("gender") or ""),
        duration=float(duration) if duration is not None else None,
        line=number,
        extra={k: v for k, v in row.items() if k not in KNOWN},
    )


def write_manifest(path: str | Path, rows: Iterable[dict[str, Any]]) -> Path:
    """Write rows as JSON Lines atomically (a temporary file renamed into place)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    with tmp.open("w", encoding="utf-8") as f:
        for row in rows:
            f.write(json.dumps(row, ensure_ascii=False) + "\n")
    tmp.replace(path)
    return path


def subset(manifest: Manifest, limit: int | None, per_speaker: bool = True) -> list[Utterance]:
    """At most ``limit`` utterances, spread evenly over speakers (round robin in file order).

    A plain head of the file would take whole speakers only, and bias every figure toward them.
    """
    utts = manifest.utterances
    if not limit or limit >= len(utts):
        return list(utts)
    if not per_speaker:
        return list(utts[:limit])
    by_speaker: dict[str, list[Utterance]] = {}
    for u in utts:
        by_speaker.setdefault(u.speaker, []).append(u)
    queues = [list(v) for v in by_speaker.values()]
    out: list[Utterance] = []
    depth = 0
    while len(out) < limit:
        took = False
        for q in queues:
            if depth < len(q) and len(out) < limit:
                out.append(q[depth])
                took = True
        if not took:
            break
        depth += 1
    order = {u.id: i for i, u in enumerate(utts)}
    return sorted(out, key=lambda u: order[u.id])
