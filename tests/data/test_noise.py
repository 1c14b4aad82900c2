"""Noise: exact active-speech SNR, spectral colours, babble never from the corrupted speaker."""

import json

import numpy as np
import pytest

from duetto.audio import load_audio, write_wav
from duetto.data.noise import (
    Babble,
    FileNoise,
    active_power,
    check_snr,
    coloured_noise,
    mix_at_snr,
    noise_source,
    speech_activity,
)
from duetto.errors import DuettoError

RATE = 16_000


@pytest.fixture(scope="module")
def utterance(shared_data):
    return load_audio(shared_data / "speechocean762" / "audio" / "000030012.flac")


@pytest.mark.parametrize("snr", [20.0, 5.0, 0.0, -5.0])
def test_mix_hits_the_snr_on_active_speech(utterance, snr):
    noise = coloured_noise("white", len(utterance), np.random.default_rng(1))
    segments = speech_activity(utterance)
    mix = mix_at_snr(utterance, noise, snr, segments)
    added = mix.audio - utterance if not mix.clipped else None
    assert mix.snr_db == pytest.approx(snr, abs=0.01)
    if added is not None:
        p_speech = active_power(utterance, segments)
        assert 10 * np.log10(p_speech / np.mean(added.astype(np.float64) ** 2)) == pytest.approx(
            snr, abs=0.05
        )
    # Measured on the whole file (silence included) the SNR would be lower than asked:
    whole = 10 * np.log10(np.mean(utterance.astype(np.float64) ** 2) / (mix.gain**2))
    assert whole < snr - 1


def test_insane_snr_is_refused():
    for bad in (100, -40, float("nan")):
        with pytest.raises(DuettoError, match="sane range"):
            check_snr(bad)


@pytest.mark.parametrize(
    ("kind", "slope_db_per_octave"), [("white", 0.0), ("pink", -3.0), ("brown", -6.0)]
)
def test_colours_have_their_spectral_slope(kind, slope_db_per_octave):
    x = coloured_noise(kind, 2**18, np.random.default_rng(0))
    assert np.mean(x**2) == pytest.approx(1.0, rel=1e-3)
    power = np.abs(np.fft.rfft(x)) ** 2
    freqs = np.fft.rfftfreq(len(x), 1 / RATE)
    band = lambda f: power[(freqs >= f) & (freqs < 2 * f)].mean()  # noqa: E731
    measured = 10 * np.log10(band(2000) / band(1000))
    # mean power per Hz one octave up: pink halves (-3 dB), brown quarters (-6 dB)
    assert measured == pytest.approx(slope_db_per_octave, abs=1.0)


def test_babble_excludes_the_corrupted_speaker(tmp_path, shared_data):
    rows = [
        json.loads(line)
        for line in (shared_data / "speechocean762" / "train.jsonl").read_text().splitlines()
    ]
    speakers = sorted({r["speaker"] for r in rows})[:7]
    manifest = []
    for s in speakers:
        row = next(r for r in rows if r["speaker"] == s)
        row["audio"] = str(shared_data / "speechocean762" / row["audio"])
        manifest.append(row)
    # The target speaker "TONE" speaks a pure 3 kHz tone: if it leaks into babble we will see it.
    t = np.arange(RATE * 2) / RATE
    write_wav(tmp_path / "tone.wav", 0.5 * np.sin(2 * np.pi * 3000 * t), RATE)
    manifest.append(
        {"id": "tone", "audio": str(tmp_path / "tone.wav"), "text": "", "speaker": "TONE"}
    )
    (tmp_path / "m.jsonl").write_text("\n".join(json.dumps(r) for r in manifest))
    babble = Babble(tmp_path / "m.jsonl", talkers=6)
    noise = babble.noise(RATE * 3, np.random.default_rng(0), exclude_speaker="TONE")
    spectrum = np.abs(np.fft.rfft(noise)) ** 2
    freqs = np.fft.rfftfreq(len(noise), 1 / RATE)
    tone = spectrum[np.abs(freqs - 3000) < 3].sum() / spectrum.sum()
    assert tone < 0.01
    # the check can see the tone: excluding another speaker, it shows up
    shares = []
    for seed in range(4):
        leaked = babble.noise(RATE * 3, np.random.default_rng(seed), exclude_speaker=speakers[0])
        spectrum = np.abs(np.fft.rfft(leaked)) ** 2
        shares.append(spectrum[np.abs(freqs - 3000) < 3].sum() / spectrum.sum())
    assert max(shares) > 0.02
    with pytest.raises(DuettoError, match="at least 9 speakers"):
        Babble(tmp_path / "m.jsonl", talkers=8)


def test_noise_folder_and_unknown_noise(tmp_path):
    write_wav(tmp_path / "hum.wav", 0.1 * np.sin(np.arange(4000) / 5), RATE)
    src = noise_source(str(tmp_path))
    assert isinstance(src, FileNoise)
    assert len(src.noise(10_000, np.random.default_rng(0))) == 10_000  # looped
    with pytest.raises(DuettoError, match="unknown noise"):
        noise_source("thunder")
    with pytest.raises(DuettoError, match="no audio files"):
        FileNoise(
            tmp_path / "empty_dir_that_exists"
            if (tmp_path / "empty_dir_that_exists").mkdir() is None
            else tmp_path
        )
