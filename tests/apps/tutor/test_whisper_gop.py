"""The shipped Whisper-GOP phone classifier on real dev recordings (speakers never trained on)."""

import numpy as np

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
    logp = features.phone_log_posteriors(x, gop["coef"], gop["intercept"])
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
