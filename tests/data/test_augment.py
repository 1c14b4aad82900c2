"""Augmentation: speed/tempo perturbation, SpecAugment, and the resumable manifest run."""

import json

import numpy as np
import pytest

from duetto.audio import load_audio
from duetto.data.augment import (
    AugmentOptions,
    log_mel,
    run_augment,
    spec_augment,
    speed_perturb,
    tempo_perturb,
)
from duetto.errors import DuettoError

RATE = 16_000


def _tone(freq=440.0, seconds=1.0):
    t = np.arange(int(RATE * seconds)) / RATE
    return (0.5 * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def _peak_hz(x):
    spectrum = np.abs(np.fft.rfft(x * np.hanning(len(x))))
    return np.fft.rfftfreq(len(x), 1 / RATE)[np.argmax(spectrum)]


@pytest.mark.parametrize("speed", [0.9, 1.1])
def test_speed_changes_tempo_and_pitch(speed):
    out = speed_perturb(_tone(), speed)
    assert len(out) == pytest.approx(RATE / speed, abs=2)
    assert _peak_hz(out) == pytest.approx(440 * speed, abs=3)


def test_tempo_keeps_pitch():
    out = tempo_perturb(_tone(), 1.25)
    assert len(out) == pytest.approx(RATE / 1.25, rel=0.02)
    assert _peak_hz(out) == pytest.approx(440, abs=3)


def test_spec_augment_masks_bands_and_frames_reproducibly():
    feats = np.random.default_rng(0).normal(size=(80, 300)).astype(np.float32)
    a = spec_augment(feats, np.random.default_rng(7), freq_width=10, time_width=20, time_ratio=0.1)
    b = spec_augment(feats, np.random.default_rng(7), freq_width=10, time_width=20, time_ratio=0.1)
    np.testing.assert_array_equal(a, b)
    masked = a != feats
    full_rows = masked.all(axis=1).sum()
    full_cols = masked.all(axis=0).sum()
    assert 0 < full_rows <= 20 and 0 < full_cols <= 40
    assert masked.sum() == pytest.approx(
        full_rows * 300 + full_cols * 80 - full_rows * full_cols, abs=0
    )
    np.testing.assert_array_equal(
        feats, np.random.default_rng(0).normal(size=(80, 300)).astype(np.float32)
    )


def test_options_refuse_insane_or_incomplete_settings():
    with pytest.raises(DuettoError, match="sane range"):
        AugmentOptions(speed=(0.2, 1.0))
    with pytest.raises(DuettoError, match="needs --snr"):
        AugmentOptions(noise=("white",))
    with pytest.raises(DuettoError, match="reversed"):
        AugmentOptions(noise=("white",), snr=(20, 5))
    with pytest.raises(DuettoError, match="nothing to do"):
        AugmentOptions()


@pytest.fixture()
def small_manifest(tmp_path, shared_data):
    rows = [
        json.loads(line)
        for line in (shared_data / "speechocean762" / "dev.jsonl").read_text().splitlines()[:2]
    ]
    for r in rows:
        r["audio"] = str(shared_data / "speechocean762" / r["audio"])
    (tmp_path / "broken.wav").write_bytes(b"RIFF not really")
    lines = [json.dumps(r) for r in rows] + [
        "not json",
        json.dumps({"id": "b", "audio": "broken.wav"}),
    ]
    path = tmp_path / "in.jsonl"
    path.write_text("\n".join(lines))
    return path


def test_run_is_deterministic_resumable_and_reports_bad_lines(small_manifest, tmp_path):
    options = AugmentOptions(
        noise=("white", "pink"), snr=(0, 20), speed=(0.9, 1.1), specaugment=True, seed=3
    )
    first = run_augment(small_manifest, tmp_path / "a", options, progress=False)
    assert first.written == 2 and [p.line for p in first.problems] == [3, 4]
    rows = [json.loads(line) for line in first.manifest.read_text().splitlines()]
    assert [r["id"] for r in rows] == ["000030012", "000030024"]
    for r in rows:
        aug = r["augmentation"]
        assert (
            0 <= aug["snr"] <= 20
            and 0.9 <= aug["speed"] <= 1.1
            and aug["noise"] in ("white", "pink")
        )
        audio = load_audio(tmp_path / "a" / r["audio"])
        assert len(audio) / RATE == pytest.approx(r["duration"], abs=0.002)
        assert np.load(tmp_path / "a" / r["features"]).shape[0] == 80
    # same seed elsewhere: identical audio; another seed: different
    run_augment(small_manifest, tmp_path / "b", options, progress=False)
    other = run_augment(
        small_manifest,
        tmp_path / "c",
        AugmentOptions(**{**options.__dict__, "seed": 4}),
        progress=False,
    )
    a = load_audio(tmp_path / "a" / "audio" / "000030012.wav")
    np.testing.assert_array_equal(a, load_audio(tmp_path / "b" / "audio" / "000030012.wav"))
    assert other.written == 2
    assert not np.array_equal(
        a[:1000], load_audio(tmp_path / "c" / "audio" / "000030012.wav")[:1000]
    )
    # resume: a deleted output is redone, complete ones are kept untouched
    (tmp_path / "a" / "audio" / "000030024.wav").unlink()
    mtime = (tmp_path / "a" / "audio" / "000030012.wav").stat().st_mtime_ns
    again = run_augment(small_manifest, tmp_path / "a", options, progress=False)
    assert (again.written, again.skipped_existing) == (1, 1)
    assert (tmp_path / "a" / "audio" / "000030012.wav").stat().st_mtime_ns == mtime
    assert len(again.manifest.read_text().splitlines()) == 2


def test_log_mel_shape(shared_data):
    audio = load_audio(shared_data / "speechocean762" / "audio" / "000030024.flac")
    feats = log_mel(audio)
    assert feats.shape == (80, len(audio) // 160 + 1)
