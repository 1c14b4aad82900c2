import numpy as np

from duetto.fusion.pauses import WINDOW_S, find_pauses, speech_runs


def probs(pattern: str) -> np.ndarray:
    """'s' = a speech window (32 ms), '.' = a silent one."""
    return np.array([0.9 if c == "s" else 0.05 for c in pattern], np.float32)


def test_pauses_of_100_ms_or_more_inside_speech_then_the_final_one():
    # 2 silent windows (64 ms) are bridged; 4 (128 ms) make a pause.
    p = find_pauses(probs("...ssss..ssss....sssss......"))
    assert [x.final for x in p] == [False, True]
    assert p[0].start == round(13 * WINDOW_S, 4)
    assert abs(p[0].duration - 4 * WINDOW_S) < 1e-3
    assert p[1].start == round(22 * WINDOW_S, 4) and p[1].duration == float("inf")


def test_no_speech_means_no_pauses():
    assert find_pauses(probs("........")) == []
    assert speech_runs(probs("")) == []


def test_speech_up_to_the_end_still_has_a_final_pause():
    p = find_pauses(probs("ssss"))
    assert len(p) == 1 and p[0].final and p[0].start == round(4 * WINDOW_S, 4)
