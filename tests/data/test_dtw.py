"""DTW on MFCCs: identity, time stretching recovered, same text closer than a different text."""

import numpy as np
import pytest

from duetto.data.augment import tempo_perturb
from duetto.data.dtw import dtw_align, plot_dtw


def test_identical_audio_has_zero_distance_and_diagonal_path(speak):
    a = speak("Kate loves China")
    r = dtw_align(a, a)
    assert r.distance == pytest.approx(0.0, abs=1e-6)
    assert np.all(r.path[:, 0] == r.path[:, 1])


def test_path_follows_a_tempo_change(speak):
    a = speak("Mark is going to see the elephant")
    b = tempo_perturb(a, 0.8)  # b is 1.25 times as long
    r = dtw_align(a, b)
    slope = np.polyfit(r.path[:, 0], r.path[:, 1], 1)[0]
    assert slope == pytest.approx(1.25, rel=0.1)
    assert tuple(r.path[0]) == (0, 0) and tuple(r.path[-1]) == (r.frames_a - 1, r.frames_b - 1)


def test_same_text_is_closer_than_a_different_text(speak):
    ref = speak("Mark is going to see the elephant")
    same = speak("Mark is going to see the elephant", speed=0.8)
    other = speak("Two six four eight seven three", speed=0.8)
    assert dtw_align(ref, same).distance < 0.7 * dtw_align(ref, other).distance


def test_plot_writes_a_png(speak, tmp_path):
    a, b = speak("Kate loves China"), speak("Kate loves China", speed=0.8)
    out = plot_dtw(a, b, dtw_align(a, b), tmp_path / "p.png")
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and out.stat().st_size > 10_000
