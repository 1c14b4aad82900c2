import json

import numpy as np
import pytest

from conftest import require_shared
from duetto.audio import SAMPLE_RATE, load_audio
from duetto.errors import AudioFormatError, ConfigError, ModelNotFoundError
from duetto.fusion.eot import DECISION_DELAY_S, MAX_WAIT_S, EndOfTurnModel, survival_table, wait_for
from duetto.fusion.pauses import find_pauses
from duetto.vad import speech_probabilities

# A small real slice of dev: enough pauses to tell ends from mid-turn pauses, a few seconds to run.
N_DEV = 60


@pytest.fixture(scope="module")
def fused():
    return EndOfTurnModel()  # the default: late fusion of the audio and text nets


def logit(p: float) -> float:
    return float(np.log(p / (1 - p)))


@pytest.fixture(scope="module")
def dev_pauses():
    """(audio up to 100 ms into each pause, prompt words in proportion, is it the real end)."""
    root = require_shared("speechocean762")
    rows = [json.loads(line) for line in open(root / "dev.jsonl")][:N_DEV]
    out = []
    for row in rows:
        audio = load_audio(root / row["audio"])
        probs = speech_probabilities(audio)
        pauses = find_pauses(probs)
        words = row["text"].lower().split()
        speech = (probs >= 0.5).sum()
        for p in pauses:
            end = int((p.start + DECISION_DELAY_S) * SAMPLE_RATE)
            clip = audio[:end] if end <= len(audio) else np.pad(audio, (0, end - len(audio)))
            heard = (probs[: int(p.start / 0.032)] >= 0.5).sum() / max(speech, 1)
            k = len(words) if p.final else min(len(words) - 1, round(heard * len(words)))
            out.append((clip, " ".join(words[:k]), p.final))
    return out


def test_wait_rule_is_monotone_and_bounded():
    table = survival_table(np.array([0.15, 0.2, 0.3, 0.5, 0.9, 1.4]))
    waits = [wait_for(p, table, lam=5.0) for p in np.linspace(0.01, 0.99, 30)]
    assert all(a >= b for a, b in zip(waits, waits[1:], strict=False))
    assert waits[0] > 1.0 and waits[-1] == pytest.approx(DECISION_DELAY_S)
    assert all(DECISION_DELAY_S <= w <= MAX_WAIT_S for w in waits)


def test_real_ends_score_higher_than_mid_turn_pauses(fused, dev_pauses):
    from sklearn.metrics import roc_auc_score

    labels = [final for _, _, final in dev_pauses]
    probs = [fused.probability(clip, text) for clip, text, _ in dev_pauses]
    assert sum(labels) >= N_DEV * 0.9 and len(labels) - sum(labels) >= 20
    assert roc_auc_score(labels, probs) > 0.8
    waits = [fused.wait_seconds(p) for p in probs]
    mean_end = np.mean([w for w, final in zip(waits, labels, strict=False) if final])
    mean_mid = np.mean([w for w, final in zip(waits, labels, strict=False) if not final])
    assert mean_end < mean_mid  # the rule waits longer where the user is likely to go on


def test_fusion_ranks_better_than_either_stream_alone(fused, dev_pauses):
    from sklearn.metrics import roc_auc_score

    labels = [final for _, _, final in dev_pauses]

    def auc(model):
        return roc_auc_score(labels, [model.probability(c, t) for c, t, _ in dev_pauses])

    alone = max(auc(EndOfTurnModel("audio")), auc(EndOfTurnModel("text")))
    assert auc(fused) > alone


def test_late_fusion_is_the_weighted_sum_of_its_branches(fused, dev_pauses):
    """The shipped graph computes what eot.json says: wa * audio logit + wt * text logit + b,
    with both weights positive (each stream pushes the same way it does alone)."""
    info = fused.meta["models"]["late"]
    (wa, wt), b = info["weights"], info["bias"]
    assert wa > 0 and wt > 0
    audio, text = EndOfTurnModel("audio"), EndOfTurnModel("text")
    for clip, words, _ in dev_pauses[:8]:
        expected = (
            wa * logit(audio.probability(clip, words))
            + wt * logit(text.probability(clip, words))
            + b
        )
        assert logit(fused.probability(clip, words)) == pytest.approx(expected, abs=1e-3)


def test_the_words_move_the_fused_decision(fused, speak):
    pad = np.zeros(int(DECISION_DELAY_S * SAMPLE_RATE), np.float32)
    audio = np.concatenate([speak("I would like to book a table."), pad])
    done = fused.probability(audio, "I would like to book a table")
    unfinished = fused.probability(audio, "I would like to")
    assert done > unfinished + 0.2
    assert fused.wait_seconds(done) < fused.wait_seconds(unfinished)


def test_engine_protocol_and_bad_input(fused):
    audio = (np.random.default_rng(0).standard_normal(SAMPLE_RATE) * 0.01).astype(np.float32)
    ms = fused.silence_needed_ms(audio, "hello")
    assert DECISION_DELAY_S * 1000 <= ms <= MAX_WAIT_S * 1000
    assert 0.0 <= fused.probability(np.zeros(0, np.float32), "") <= 1.0  # nothing heard yet
    with pytest.raises(AudioFormatError):
        fused.probability(np.full(1000, np.nan, np.float32), "hi")
    with pytest.raises(ConfigError):
        EndOfTurnModel("telepathy")
    with pytest.raises(ModelNotFoundError):
        EndOfTurnModel("gated", path="/nonexistent/eot.onnx")
