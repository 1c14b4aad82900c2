"""Robustness evaluation: conditions, the figures' arithmetic, and a small real run."""

import json

import pytest

from duetto.cli import main
from duetto.data.evaluate import (
    Condition,
    UttResult,
    adaptive_threshold,
    age_band,
    parse_conditions,
    summarize,
)
from duetto.data.noise import coloured_noise, mix_at_snr
from duetto.errors import DuettoError


def test_parse_conditions():
    conds = parse_conditions("clean,10,0", "babble,white")
    assert [c.label for c in conds] == [
        "clean",
        "babble 10 dB",
        "white 10 dB",
        "babble 0 dB",
        "white 0 dB",
    ]
    with pytest.raises(DuettoError, match="sane range"):
        parse_conditions("clean,99", "white")
    with pytest.raises(DuettoError, match="not a number"):
        parse_conditions("loud", "white")


def _r(cond, errors, words, age, gender, miss=0, fa=0):
    return UttResult(
        "u", "s", age, gender, cond, "r", "h", errors, words, 1.0, 4.0, 100, miss, 50, fa, 0.5
    )


def test_summaries_are_corpus_level_and_split_by_group():
    clean = Condition("clean", None)
    rs = [
        _r(clean, 1, 10, 8, "f", miss=10),
        _r(clean, 3, 5, 30, "m", fa=5),
        _r(clean, 0, 5, 14, "f"),
    ]
    by = {(s.group): s for s in summarize(rs, ["age", "gender"])}
    assert by["all"].wer == pytest.approx(4 / 20)
    assert by["all"].rtf == pytest.approx(0.25)
    assert by["all"].vad_miss == pytest.approx(10 / 300) and by[
        "all"
    ].vad_false_alarm == pytest.approx(5 / 150)
    assert by["age=child <12"].wer == pytest.approx(0.1) and by[
        "age=adult 18+"
    ].wer == pytest.approx(0.6)
    assert by["gender=f"].utterances == 2 and by["gender=f"].wer == pytest.approx(1 / 15)


def test_age_bands():
    assert [age_band(a) for a in (6, 11, 12, 17, 18, 40, None)] == [
        "child <12", "child <12", "teen 12-17", "teen 12-17", "adult 18+", "adult 18+", "unknown",
    ]  # fmt: skip


def test_adaptive_threshold_drops_in_noise(speak):
    import numpy as np

    speech = np.concatenate(
        [np.zeros(8000, np.float32), speak("Kate loves China"), np.zeros(8000, np.float32)]
    )
    noisy = mix_at_snr(
        speech, coloured_noise("white", len(speech), np.random.default_rng(0)), 0
    ).audio
    assert adaptive_threshold(speech) == 0.5
    assert adaptive_threshold(noisy) < 0.35


def test_eval_cli_on_real_speech(shared_data, tmp_path, capsys):
    png, results = tmp_path / "w.png", tmp_path / "r.jsonl"
    code = main(
        ["eval", "asr", str(shared_data / "speechocean762" / "dev.jsonl"), "--snr", "clean,-5", "--noise", "white",
         "--limit", "2", "--by", "gender", "--png", str(png), "--results", str(results), "--json"]
    )  # fmt: skip
    assert code == 0
    data = json.loads(capsys.readouterr().out)
    rows = {(s["condition"], s["group"]): s for s in data["summary"]}
    assert data["utterances"] == 2 and data["skipped"] == 0
    assert rows[("clean", "all")]["vad_miss"] == 0.0  # the reference is the clean VAD itself
    assert rows[("clean", "all")]["wer"] < rows[("white -5 dB", "all")]["wer"]
    assert rows[("white -5 dB", "all")]["vad_miss"] > 0.05
    assert ("clean", "gender=m") in rows
    assert png.read_bytes()[:4] == b"\x89PNG"
    assert len(results.read_text().splitlines()) == 4


def test_eval_cli_bad_input(shared_data, capsys):
    dev = str(shared_data / "speechocean762" / "dev.jsonl")
    assert main(["eval", "asr", dev, "--by", "accent"]) == 2
    assert main(["eval", "asr", dev, "--snr", "5", "--noise", "white", "--limit", "0"]) == 2
    assert "error" in capsys.readouterr().err
    assert main(["eval", "asr", dev, "--min-word-prob", "2"]) == 2
    assert "minimum word probability" in capsys.readouterr().err


def test_config_labels_and_bounds():
    from duetto.data.evaluate import EvalConfig

    assert EvalConfig().label == "baseline"
    assert EvalConfig(beam_size=5, min_word_prob=0.2).label == "beam=5,min-word-prob=0.2"
    for bad in ({"beam_size": 0}, {"min_word_prob": 1.5}, {"denoise": "magic"}):
        with pytest.raises(DuettoError):
            EvalConfig(**bad)


def test_compression_ratio_flags_repetition_loops():
    from duetto.asr.whisper import MAX_COMPRESSION_RATIO, compression_ratio

    assert compression_ratio("Mark is going to see elephant.") < MAX_COMPRESSION_RATIO
    assert compression_ratio("see you in the next video, " * 8) > MAX_COMPRESSION_RATIO
    assert compression_ratio("") == 0.0


def test_the_snr_gate_reaches_the_engine():
    from duetto.data.evaluate import EvalConfig, Evaluator

    config = EvalConfig(min_word_prob=0.3, filter_below_snr_db=20.0)
    assert config.label == "min-word-prob=0.3,filter-below-snr=20dB"
    settings = Evaluator(config).asr.settings
    assert settings.filter_below_snr_db == 20.0 and settings.min_word_prob == 0.3
