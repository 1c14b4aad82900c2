import numpy as np
import pytest

from duetto.fusion.features import N_FEATURES, N_FRAMES, SAMPLE_RATE, frame_features, pitch


def tone(f0: float | np.ndarray, seconds: float = 1.0, level: float = 0.3) -> np.ndarray:
    n = int(seconds * SAMPLE_RATE)
    f = np.broadcast_to(np.asarray(f0, np.float64), (n,))
    phase = 2 * np.pi * np.cumsum(f) / SAMPLE_RATE
    return (level * (np.sin(phase) + 0.4 * np.sin(2 * phase) + 0.2 * np.sin(3 * phase))).astype(
        np.float32
    )


@pytest.mark.parametrize("f0", [75.0, 120.0, 210.0, 330.0, 450.0])
def test_pitch_of_harmonic_tones_within_two_percent(f0):
    f, strength = pitch(tone(f0))
    voiced = f[10:-10]
    assert (voiced > 0).all()
    assert abs(np.median(voiced) / f0 - 1) < 0.02
    assert strength[10:-10].mean() > 0.8


def test_noise_is_unvoiced():
    rng = np.random.default_rng(0)
    f, _ = pitch((rng.standard_normal(SAMPLE_RATE) * 0.1).astype(np.float32))
    assert (f > 0).mean() < 0.1


def test_falling_and_rising_contours_end_on_opposite_sides_of_the_median():
    fall = frame_features(tone(np.linspace(260, 150, SAMPLE_RATE)))
    rise = frame_features(tone(np.linspace(150, 260, SAMPLE_RATE)))
    pitch_col = -2
    assert fall[-15, pitch_col] < -0.2 < 0.2 < rise[-15, pitch_col]


def test_shape_padding_and_gain_invariance():
    x = tone(200.0, seconds=1.5)
    a, b = frame_features(x), frame_features(x * 0.05)
    assert a.shape == (N_FRAMES, N_FEATURES)
    mask = a[:, -1]
    assert mask[:200].sum() == 0 and mask[-140:].all()  # 1.5 s of 4 s: the left is padding
    assert np.abs(a - b).max() < 0.05  # level-relative features ignore the microphone gain


def test_longer_audio_keeps_the_last_window_and_tiny_audio_is_all_padding():
    long = tone(200.0, seconds=6.0)
    assert frame_features(long)[:, -1].all()
    assert not frame_features(np.zeros(50, np.float32)).any()
