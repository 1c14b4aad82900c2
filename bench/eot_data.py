"""Turn-taking data from speechocean762 (shared by bench/train_eot.py and bench/turn_taking.py).

For every utterance: Silero VAD probabilities (32 ms windows) and the bundled ASR's words with
timestamps, cached as JSON lines under ~/.cache/duetto/fusion (never in the repository).
Then every VAD pause of 100 ms or more becomes one decision: the audio up to 100 ms into the
pause, the ASR words spoken before it, and the label (the utterance's real end or not).

    nice -n 10 .venv/bin/python bench/eot_data.py --split dev --split train
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from duetto.fusion.pauses import Pause, find_pauses, speech_runs

ROOT = Path(__file__).resolve().parents[1]
DATA = (
    Path(os.environ.get("DUETTO_SHARED_DATA", ROOT.parent / "shared" / "data")) / "speechocean762"
)
CACHE = Path(os.environ.get("DUETTO_CACHE", Path.home() / ".cache" / "duetto")) / "fusion"
SAMPLE_RATE = 16_000
# The model is asked once per pause, as soon as the VAD has seen this much silence.
DECISION_DELAY_S = 0.1


def rows(split: str) -> list[dict]:
    with open(DATA / f"{split}.jsonl") as f:
        return [json.loads(line) for line in f]


def cache_file(split: str) -> Path:
    return CACHE / f"speechocean762-{split}.jsonl"


def extract_vad(split: str) -> None:
    """VAD probabilities only (fast): records with ``words`` None. Their text prefixes come from
    the reference prompt (see :func:`prefix_by_share`) until the ASR pass covers them."""
    from duetto.audio import load_audio
    from duetto.vad import load_vad, speech_probabilities

    out = cache_file(split + "-vad")
    done = {r["id"] for r in _read(out)}
    vad = load_vad()
    with out.open("a") as f:
        for i, row in enumerate(r for r in rows(split) if r["id"] not in done):
            probs = speech_probabilities(load_audio(DATA / row["audio"]), vad)
            record = {**row, "vad": [round(float(p), 3) for p in probs], "words": None}
            f.write(json.dumps(record) + "\n")
            if i % 200 == 0:
                print(f"{split} vad: {i + 1}", file=sys.stderr)


def extract(split: str, limit: int | None = None, reverse: bool = False) -> None:
    """VAD probabilities and ASR words for every utterance of ``split`` (resumable).

    ``reverse`` walks the split from its end into a second file, so that two processes can
    share the work; :func:`load_cached` merges both."""
    from duetto.asr import load_asr
    from duetto.audio import load_audio
    from duetto.vad import load_vad, speech_probabilities

    out = cache_file(split + "-rev" if reverse else split)
    out.parent.mkdir(parents=True, exist_ok=True)
    done = {r["id"] for r in _read(cache_file(split)) + _read(cache_file(split + "-rev"))}
    todo = [r for r in (rows(split)[::-1] if reverse else rows(split)) if r["id"] not in done]
    todo = todo[: limit if limit else None]
    asr, vad = load_asr(), load_vad()
    t0 = time.time()
    with out.open("a") as f:
        for i, row in enumerate(todo):
            audio = load_audio(DATA / row["audio"])
            probs = speech_probabilities(audio, vad)
            words = asr.transcribe(audio, words=True).words
            record = {
                **row,
                "vad": [round(float(p), 3) for p in probs],
                "words": [[w.word, round(w.start, 3), round(w.end, 3)] for w in words],
            }
            f.write(json.dumps(record) + "\n")
            f.flush()
            if i % 50 == 0:
                print(f"{split}: {i + 1}/{len(todo)} in {time.time() - t0:.0f} s", file=sys.stderr)


def _read(path: Path) -> list[dict]:
    if not path.exists():
        return []
    with path.open() as f:
        return [json.loads(line) for line in f if line.endswith("\n")]


def load_cached(split: str) -> list[dict]:
    """Cached records of ``split`` (both halves when two processes shared the work)."""
    records = {r["id"]: r for r in _read(cache_file(split + "-vad"))}
    # Records with the ASR's words replace the VAD-only ones.
    records.update(
        {r["id"]: r for r in _read(cache_file(split)) + _read(cache_file(split + "-rev"))}
    )
    if not records:
        raise SystemExit(f"no cache for {split}: run bench/eot_data.py --split {split} first")
    return sorted(records.values(), key=lambda r: r["id"])


@dataclass(frozen=True)
class Decision:
    """One pause of one utterance: what the model is asked about."""

    utt: str
    speaker: str
    pause: Pause
    prefix: str  # ASR words whose middle lies before the pause
    label: int  # 1 = the utterance's real end


def prefix_before(words: list, t: float) -> str:
    return " ".join(w for w, s, e in words if (s + e) / 2 < t)


def prefix_by_share(record: dict, pause: Pause) -> str:
    """Without ASR words: the prompt's words in proportion to the speech heard before the
    pause (at least one word missing at a pause inside the utterance)."""
    words = record["text"].lower().split()
    if pause.final:
        return " ".join(words)
    runs = speech_runs(np.asarray(record["vad"], np.float32))
    total = sum(e - s for s, e in runs)
    before = sum(min(e, pause.start) - s for s, e in runs if s < pause.start)
    k = int(round(len(words) * before / total)) if total > 0 else 0
    return " ".join(words[: min(max(k, 0), len(words) - 1)])


def decisions(record: dict) -> list[Decision]:
    pauses = find_pauses(np.asarray(record["vad"], np.float32))
    return [
        Decision(
            utt=record["id"],
            speaker=record["speaker"],
            pause=p,
            prefix=prefix_before(record["words"], p.start)
            if record["words"] is not None
            else prefix_by_share(record, p),
            label=int(p.final),
        )
        for p in pauses
    ]


def audio_until(record: dict, t: float, audio: np.ndarray | None = None) -> np.ndarray:
    """The utterance's audio up to ``t`` seconds, padded with its own quietest noise when the
    recording stops sooner (so no model can learn that digital silence means "the end")."""
    from duetto.audio import load_audio

    if audio is None:
        audio = load_audio(DATA / record["audio"])
    n = int(round(t * SAMPLE_RATE))
    if n <= len(audio):
        return audio[:n]
    return np.concatenate([audio, room_tone(audio, n - len(audio))])


def room_tone(audio: np.ndarray, n: int, seed: int = 0) -> np.ndarray:
    """``n`` samples of noise at the level of the recording's quietest 20 ms."""
    frame = 320
    k = max(1, len(audio) // frame)
    rms = np.sqrt(np.mean(audio[: k * frame].reshape(k, frame) ** 2, axis=1) + 1e-12)
    level = float(np.percentile(rms, 5))
    return (np.random.default_rng(seed).standard_normal(n) * level).astype(np.float32)


def iter_decisions(records: list[dict]) -> Iterator[tuple[dict, Decision]]:
    for record in records:
        for d in decisions(record):
            yield record, d


def main() -> None:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--split", action="append", choices=("train", "dev"), required=True)
    p.add_argument("--limit", type=int, help="at most this many new utterances per split")
    p.add_argument("--reverse", action="store_true", help="walk from the end (a second worker)")
    p.add_argument(
        "--vad-only", action="store_true", help="VAD only (fast); prompts stand in for ASR"
    )
    args = p.parse_args()
    for split in args.split:
        if args.vad_only:
            extract_vad(split)
        else:
            extract(split, args.limit, args.reverse)


if __name__ == "__main__":
    main()
