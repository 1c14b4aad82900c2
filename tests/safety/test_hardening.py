"""API-key check and the audio decoder fuzzer."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf

from duetto.safety.hardening import check_api_key, fuzz_decoder, mutations


def test_api_key_check():
    keys = ["k-123456", "other-key"]
    assert check_api_key("k-123456", keys)
    assert check_api_key(b"other-key", keys)
    assert not check_api_key("k-12345", keys)
    assert not check_api_key("k-1234567", keys)
    assert not check_api_key("", keys + [""])  # an empty key never authenticates
    assert not check_api_key(None, keys)
    assert not check_api_key("k-123456", [])


def test_mutations_truncate_and_flip():
    data = bytes(range(256)) * 8
    muts = list(mutations(data, np.random.default_rng(0), 9))
    assert len(muts) == 9
    assert any(label.startswith("truncate") and len(m) < len(data) for label, m in muts)
    assert any(label.startswith("flip") and m != data for label, m in muts)


@pytest.fixture(scope="module")
def audio_files(tmp_path_factory, shared_data):
    from duetto.audio import load_audio

    audio = load_audio(shared_data / "speechocean762" / "audio" / "000030012.flac")
    folder = tmp_path_factory.mktemp("fuzz")
    sf.write(folder / "a.wav", audio, 16_000, subtype="PCM_16")
    sf.write(folder / "a.flac", audio, 16_000)
    return [folder / "a.wav", folder / "a.flac"]


def test_fuzz_truncated_files_never_crash(audio_files):
    report = fuzz_decoder(audio_files, cases_per_file=15, seed=1, kinds=("truncate",))
    assert report.cases == 30
    assert report.decoded + report.rejected == report.cases, report.failures
    assert report.rejected > 0  # the fuzzer really produced undecodable files
    assert report.rss_after_mb - report.rss_before_mb < 200


def test_fuzz_bit_flipped_files_never_crash(audio_files):
    report = fuzz_decoder(
        audio_files[:1], cases_per_file=60, seed=0, kinds=("flip", "flip+truncate")
    )
    assert report.failures == [], report.failures
