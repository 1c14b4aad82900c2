"""The bank's second intent model (all-mpnet-base-v2, top layers fine-tuned): built from the
PyPI wheels and the shipped changes, mixed into the intent distribution, and left out cleanly."""

from __future__ import annotations

import logging

import numpy as np
import pytest

from duetto.apps.bank import mpnet
from duetto.apps.bank.nlu import BankNLU, log_softmax

QUERIES = [
    "I think my card was stolen yesterday",
    "why did I get charged a fee for taking cash out?",
    "the exchange rate you gave me for euros was wrong",
]


@pytest.fixture(scope="module")
def second():
    model = mpnet.shared_second_model()
    assert model is not None, "the second intent model could not be built here"
    return model


def test_the_int8_model_keeps_the_fine_tuned_fp32_decisions(second):
    torch = pytest.importorskip("torch")
    from transformers import AutoModel, AutoTokenizer

    arrays = dict(np.load(mpnet.DELTAS, allow_pickle=False))
    base = mpnet.base_dir()
    model = AutoModel.from_pretrained(str(base)).eval()
    before = model.encoder.layer[-1].output.dense.weight.clone()
    mpnet.apply_deltas(model, arrays)
    # The shipped changes did change the top layers (and only a little, as fine-tuning does).
    change = float((model.encoder.layer[-1].output.dense.weight - before).norm() / before.norm())
    assert 0.01 < change < 0.2
    tok = AutoTokenizer.from_pretrained(str(base))
    for text in QUERIES:
        enc = tok([text], return_tensors="pt")
        with torch.inference_mode():
            states = model(**enc)[0]
        pooled = states.mean(1).numpy()[0]
        fp32 = pooled @ arrays["head_weight"].T + arrays["head_bias"]
        int8 = second.logits(text)
        assert int8.shape == (77,)
        assert int(int8.argmax()) == int(fp32.argmax())
        assert np.corrcoef(int8, fp32)[0, 1] > 0.95  # int8 weights and activations: ~0.97


def test_the_intent_mix_takes_half_its_log_probabilities(second):
    alone, mixed = BankNLU(second=False), BankNLU(second=second)
    assert alone.second is None and mixed.second is second
    for text in QUERIES:
        enc = alone.encoder.encode([text])[0]
        expected = log_softmax(
            (1 - mpnet.WEIGHT) * np.log(alone.intent_probs(enc))
            + mpnet.WEIGHT * log_softmax(second.logits(text))
        )
        assert np.allclose(np.log(mixed.intent_probs(enc)), expected, atol=1e-5)
        assert not np.allclose(mixed.intent_probs(enc), alone.intent_probs(enc), atol=1e-3)


def test_without_the_wheels_or_switched_off_minilm_answers_alone(monkeypatch, tmp_path, caplog):
    monkeypatch.setenv("DUETTO_CACHE", str(tmp_path))
    monkeypatch.setattr(mpnet, "PARTS", ("no-such-package-part-001",))
    mpnet.shared_second_model.cache_clear()
    try:
        with caplog.at_level(logging.WARNING):
            assert mpnet.shared_second_model() is None
        assert "no-such-package-part-001" in caplog.text
        nlu = BankNLU()
        assert nlu.second is None
        assert nlu.understand("how can I change my PIN?").intent == "change_pin"
        mpnet.shared_second_model.cache_clear()
        monkeypatch.setenv(mpnet.OFF_ENV, "0")
        assert mpnet.shared_second_model() is None
    finally:
        mpnet.shared_second_model.cache_clear()
