"""Expected phones: dictionary words, numbers, and words no dictionary knows."""

from duetto.apps.tutor.align import PHONES
from duetto.apps.tutor.lexicon import letter_to_sound, pronounce, words_of


def test_words_of_spells_numbers_and_drops_punctuation():
    assert words_of("I have 3 cats, 25 dogs!") == [
        "I",
        "HAVE",
        "THREE",
        "CATS",
        "TWENTY",
        "FIVE",
        "DOGS",
    ]
    assert words_of("...") == []


def test_dictionary_words_come_from_cmudict():
    (three,) = pronounce(["THREE"])
    assert three.phones == ("TH", "R", "IY")
    assert three.source == "cmudict"


def test_user_lexicon_wins(tmp_path):
    lex = tmp_path / "lex.txt"
    lex.write_text("THREE T R IY1\n")
    (three,) = pronounce(["THREE"], lex)
    assert three.phones == ("T", "R", "IY") and three.source == "lexicon" and three.stressed == (2,)


def test_unknown_word_gets_model_phones_without_crashing():
    (word,) = pronounce(["ZORBLATTER"])
    assert word.source in ("espeak", "rules")
    assert word.phones and set(word.phones) <= set(PHONES)
    assert word.phones[0] == "Z"


def test_letter_to_sound_rules():
    assert letter_to_sound("ship") == ["SH", "IH", "P"]
    assert set(letter_to_sound("qwxz")) <= set(PHONES)
