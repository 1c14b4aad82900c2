"""Pauses inside a turn, found from Silero VAD probabilities (one per 32 ms window).

A *pause* is a run of non-speech windows of at least :data:`MIN_PAUSE_S` between speech. The
end of the last speech run is the turn's end; every earlier pause is a place where an agent
could wrongly cut the user off. This is what the end-of-turn model is asked about.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# Silero v6 at 16 kHz: 512 samples per probability.
WINDOW_S = 512 / 16_000
# Silero's default speech threshold.
SPEECH_THRESHOLD = 0.5
# Pauses shorter than this are gaps between syllables, not places to decide anything; the
# public end-of-turn benchmarks query their models at VAD pauses of 100 ms or more.
MIN_PAUSE_S = 0.1


@dataclass(frozen=True)
class Pause:
    """A silence after speech: ``start`` is where speech stopped, ``duration`` how long the
    silence lasted before speech resumed (``inf`` for the silence after the turn's end)."""

    start: float
    duration: float
    final: bool


def speech_runs(
    probs: np.ndarray, threshold: float = SPEECH_THRESHOLD
) -> list[tuple[float, float]]:
    """Runs of consecutive speech windows as ``(start_s, end_s)``."""
    speech = np.asarray(probs) >= threshold
    if not speech.any():
        return []
    padded = np.concatenate([[False], speech, [False]]).astype(np.int8)
    edges = np.diff(padded)
    starts = np.flatnonzero(edges == 1)
    ends = np.flatnonzero(edges == -1)
    return [(s * WINDOW_S, e * WINDOW_S) for s, e in zip(starts, ends, strict=True)]


def find_pauses(
    probs: np.ndarray, threshold: float = SPEECH_THRESHOLD, min_pause_s: float = MIN_PAUSE_S
) -> list[Pause]:
    """Every pause of at least ``min_pause_s`` inside the speech, then the final one.

    Returns an empty list when the VAD found no speech at all.
    """
    runs = speech_runs(probs, threshold)
    pauses: list[Pause] = []
    for (_, end), (next_start, _) in zip(runs, runs[1:], strict=False):
        gap = next_start - end
        if gap >= min_pause_s - 1e-9:
            pauses.append(
                Pause(start=round(float(end), 4), duration=round(float(gap), 4), final=False)
            )
    if runs:
        pauses.append(Pause(start=round(float(runs[-1][1]), 4), duration=float("inf"), final=True))
    return pauses
