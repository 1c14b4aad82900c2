"""The shipped NLU heads on real utterances, and the BIO span arithmetic."""

from __future__ import annotations

import pytest

from duetto.apps.bank.encoder import split_words
from duetto.apps.bank.training import decode_tags, micro_f1


def test_bio_tags_round_trip_to_character_spans():
    text = "send 50 pounds to Bob Smith tomorrow"
    words = tuple(split_words(text))
    tags = [
        "O",
        "B-amount_of_money",
        "I-amount_of_money",
        "O",
        "B-person_name",
        "I-person_name",
        "B-date",
    ]
    spans = decode_tags(words, tags)
    assert [(n, text[a:b]) for n, a, b in spans] == [
        ("amount_of_money", "50 pounds"),
        ("person_name", "Bob Smith"),
        ("date", "tomorrow"),
    ]
    # An I- tag with no B- before it still starts a span rather than vanishing.
    assert decode_tags(words[:2], ["O", "I-amount_of_money"]) == [("amount_of_money", 5, 7)]


def test_micro_f1():
    assert micro_f1([{"a", "b"}], [{"a"}]) == pytest.approx(2 / 3)
    assert micro_f1([{"a"}], [set()]) == 0.0


@pytest.fixture(scope="module")
def nlu():
    from duetto.apps.bank.nlu import BankNLU

    return BankNLU()


@pytest.mark.parametrize(
    ("text", "intent"),
    [
        ("I think my card was stolen yesterday", "lost_or_stolen_card"),
        ("how can I change my PIN?", "change_pin"),
        ("my new card still hasn't arrived", "card_arrival"),
        ("how do I top up with apple pay", "apple_pay_or_google_pay"),
    ],
)
def test_banking77_intents(nlu, text, intent):
    assert nlu.understand(text).intent == intent


def test_every_word_gets_a_vector_and_the_intents_a_distribution(nlu):
    text = "Send £60.50 to O'Brien's account, please!"
    enc = nlu.encoder.encode([text])[0]
    assert [text[a:b] for a, b in enc.words][:4] == ["Send", "£", "60.50", "to"]
    # The tokenizer's character offsets must land inside the words the slot tagger labels.
    assert (abs(enc.word_states).sum(1) > 0).all()
    probs = nlu.intent_probs(enc)
    assert probs.shape == (77,) and abs(float(probs.sum()) - 1) < 1e-4 and 0 <= nlu.mix < 1


def test_understands_empty_and_overlong_utterances(nlu):
    empty = nlu.understand("")
    assert empty.intent in nlu.intent_labels and empty.slots == ()
    # Far beyond the model's token window: the tail is cut, never an error.
    long = nlu.understand("I lost my card and " + "really " * 200 + "need help")
    assert long.intent == "lost_or_stolen_card"


def test_missing_model_files_name_the_fix(tmp_path):
    from duetto.apps.bank.nlu import BankNLU, OnnxEncoder
    from duetto.errors import ModelNotFoundError

    with pytest.raises(ModelNotFoundError, match="bank_finetune"):
        BankNLU(weights=tmp_path / "nlu.npz")
    with pytest.raises(ModelNotFoundError, match="missing"):
        OnnxEncoder(tmp_path / "model.onnx")


def test_acts_and_slots_of_a_transfer_request(nlu):
    u = nlu.understand("I want to transfer 50 pounds to my landlord tomorrow")
    assert "transfer_payment_deposit" in u.acts
    found = {s.name: s.text for s in u.slots}
    assert "50 pounds" in found.get("amount_of_money", "") and found.get("date") == "tomorrow"
    assert u.ms > 0


# Whisper tiny.en's 5 best hypotheses (beam 5, the bank prompt) of a spoken BANKING77 *train*
# query, atm_support, with their mean token log-probabilities (bench/bank_spoken.py --nbest 5):
# the best one misheard "withdraw" as "restore".
WITHDRAW = (
    ("I need to restore money, where can I do that?", -0.2116),
    ("I need to withdraw money, where can I do that?", -0.2223),
    ("I need to withdraw money. Where can I do that?", -0.2367),
    ("I need to restore money. Where can I do that?", -0.246),
    ("I need to restore money, where can I do that.", -0.3925),
)


def test_the_intent_comes_from_the_asr_hypotheses_when_the_best_one_is_misheard(nlu):
    from duetto.apps.bank.nlu import hypothesis_weights

    text = WITHDRAW[0][0]
    alone = nlu.understand(text)
    assert alone.intent != "atm_support"  # the case under test: the best hypothesis misleads
    # The "withdraw" hypotheses read as atm_support, and surely; "restore" is a guess ...
    own = {t: nlu.understand(t) for t, _ in WITHDRAW}
    withdraw = [u for t, u in own.items() if "withdraw" in t]
    assert {u.intent for u in withdraw} == {"atm_support"}
    assert min(u.confidence for u in withdraw) > 2 * alone.confidence
    weights = hypothesis_weights([s for _, s in WITHDRAW])
    assert 0.9 * weights[0] < weights[1] < weights[0]  # a little less likely by the ASR
    # ... and the averaged reading follows them; acts and slots stay the best hypothesis's.
    heard = nlu.understand(text, alternatives=WITHDRAW)
    assert heard.intent == "atm_support" and heard.text == text
    assert (heard.acts, heard.slots) == (alone.acts, alone.slots)
    # A cold temperature is the best hypothesis alone; the transcript alone changes nothing.
    assert nlu.intent_labels[int(nlu.nbest_probs(WITHDRAW, 1e-3).argmax())] == alone.intent
    assert nlu.understand(text, alternatives=WITHDRAW[:1]).intent == alone.intent
