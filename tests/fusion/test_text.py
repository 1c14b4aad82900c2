import numpy as np
import pytest

from duetto.fusion.text import MAX_TOKENS, TextEncoder, normalize


@pytest.fixture(scope="module")
def encoder():
    return TextEncoder()


def test_normalize_drops_case_and_punctuation():
    assert normalize("Mandy has a big... ARM.") == "mandy has a big arm"
    assert normalize("It's 3, 5, 1.") == "it's 3 5 1"


def test_sentence_embeddings_are_unit_length_and_carry_meaning(encoder):
    _, a = encoder.encode("what time is it")
    _, b = encoder.encode("could you tell me the time")
    _, c = encoder.encode("my card was declined at the shop")
    assert abs(np.linalg.norm(a) - 1) < 1e-4
    assert float(a @ b) > float(a @ c) + 0.2


def test_punctuation_does_not_change_the_embedding(encoder):
    assert np.allclose(encoder.encode("I would like to")[1], encoder.encode("I would like to.")[1])


def test_long_transcripts_keep_their_last_tokens(encoder):
    ids = encoder.token_ids(" ".join(["word"] * 100) + " the very end")
    assert len(ids) == MAX_TOKENS
    end = encoder.tokenizer.encode("the very end").ids[1:-1]
    assert list(ids[-1 - len(end) : -1]) == end
    states, _ = encoder.encode("")  # nothing heard yet: still a valid input
    assert states.shape[1] == 384
