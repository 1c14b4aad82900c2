"""The transformer (GOPT-style) scorer on real dev recordings (speakers never trained on)."""

import sys
from pathlib import Path

import numpy as np
import pytest

from duetto.apps.tutor import gopt, lexicon
from duetto.apps.tutor.evidence import gather
from duetto.apps.tutor.scoring import Scorer

GOOD = "014200011"  # human total 10
POOR = "096170013"  # human total 4.4


@pytest.fixture(scope="module")
def gopt_scorer(scorer):
    return Scorer(asr=scorer.asr, scorer="gopt")


def _inputs(scorer, audio, text):
    words = lexicon.words_of(text)
    ev = gather(audio, words, [list(p.phones) for p in lexicon.pronounce(words)])
    return scorer.phone_inputs(ev, scorer.whisper_evidence(audio, words))


def test_numpy_forward_matches_the_torch_model(scorer, dev_audio):
    torch = pytest.importorskip("torch")  # training only: the tutor runs the numpy forward pass
    sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "bench"))
    from tutor_gopt import Net

    pe, x = _inputs(scorer, *dev_audio(GOOD)[:2])
    torch.manual_seed(0)
    net = Net(x.shape[1], d=16, layers=2, heads=2, drop=0.0, in_drop=0.0).eval()
    mean, scale = x.mean(0), x.std(0) + 1e-3
    model = gopt.GOPT((net.export(mean, scale),), heads=2, layers=2, blend={}, threshold=None)
    ids = np.array([gopt._PHONE_INDEX.get(p.expected, -1) + 1 for p in pe])
    phone, word, utt = model.forward(x.astype(np.float64), ids)
    with torch.no_grad():
        xt = torch.from_numpy(((x - mean) / scale).astype(np.float32))[None]
        tp, tw, tu = net(xt, torch.from_numpy(ids)[None], torch.ones(1, len(x), dtype=torch.bool))
    np.testing.assert_allclose(phone, tp[0].numpy(), atol=1e-4)
    np.testing.assert_allclose(word, tw[0].numpy(), atol=1e-4)
    np.testing.assert_allclose(utt, tu[0].numpy(), atol=1e-4)


def test_gopt_scores_good_reader_above_poor_reader(gopt_scorer, dev_audio):
    good = gopt_scorer.score(*dev_audio(GOOD)[:2])
    poor = gopt_scorer.score(*dev_audio(POOR)[:2])
    assert good.utterance.total > poor.utterance.total + 2
    assert np.mean([p.score for p in good.phones]) > np.mean([p.score for p in poor.phones])
    assert all(0 <= p.score <= 2 for p in poor.phones)
    assert all(0 <= w.accuracy <= 10 for w in poor.words if w.accuracy is not None)


def test_gopt_changes_the_ridge_scores(scorer, gopt_scorer, dev_audio):
    ridge_scorer = Scorer(asr=scorer.asr, scorer="ridge")
    blend = gopt_scorer.gopt.blend
    assert all(0 <= float(np.min(w)) and float(np.max(w)) <= 1 for w in blend.values())
    assert float(blend["phone"]) > 0, "the shipped blend gives the transformer no weight"
    audio, text = dev_audio(POOR)[:2]
    ridge = [p.score for p in ridge_scorer.score(audio, text).phones]
    mixed = [p.score for p in gopt_scorer.score(audio, text).phones]
    assert len(ridge) == len(mixed) and not np.allclose(ridge, mixed)


def test_unknown_scorer_is_refused():
    with pytest.raises(ValueError, match="scorer"):
        Scorer(scorer="mlp")
