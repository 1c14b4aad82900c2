"""Cutting a base model's output into clean, speakable clauses."""

from duetto.dialogue import Memory, Turn
from duetto.llm.prompt import ClauseSplitter, clean_reply, few_shot_prompt


def test_clean_reply_strips_role_tags_and_keeps_two_sentences():
    raw = "Sure thing. Paris is lovely! It has museums. User: and then?"
    assert clean_reply(raw) == "Sure thing. Paris is lovely!"
    assert clean_reply("Assistant: Hello there.") == "Hello there."
    assert clean_reply("The answer is") == "The answer is."
    assert clean_reply("  **  ") == ""


def test_clause_splitter_streams_clauses_before_the_reply_ends():
    splitter = ClauseSplitter()
    out = []
    for token in [
        "Well",
        ",",
        " if you want to",
        " sleep better, try",
        " reading.",
        " Also",
        " avoid coffee.",
        " More text.",
    ]:
        out += splitter.feed(token)
    out.append(splitter.flush())
    clauses = [c for c in out if c]
    # The first clause comes out as soon as its comma arrives, long before the end.
    assert clauses[0] == "Well, if you want to sleep better,"
    assert clauses[1:] == ["try reading.", "Also avoid coffee."]  # capped at two sentences


def test_an_unpunctuated_run_is_spoken_in_pieces_of_twelve_words():
    splitter = ClauseSplitter()
    words = "it is alice or patient it is alice or patient it is alice".split()
    out = []
    for i, word in enumerate(words):
        out += splitter.feed((" " if i else "") + word)
        if i < 12:
            assert out == [], i  # the 12th word may still be growing: no cut yet
    assert out == [" ".join(words[:12])]  # cut once the 13th word has begun
    assert splitter.flush() == "alice."


def test_clause_splitter_stops_at_the_next_user_line():
    splitter = ClauseSplitter()
    out = splitter.feed("Paris is the capital.\nUser: what about")
    assert out == ["Paris is the capital."]
    assert splitter.done and splitter.flush() == ""


def test_memory_drops_oldest_turns_and_keeps_system_prompt():
    memory = Memory("SYSTEM PROMPT", max_tokens=60)
    for i in range(10):
        memory.add(Turn(f"question number {i} " * 3, f"answer number {i} " * 3))
    count = lambda text: len(text.split())  # noqa: E731
    messages = memory.messages(count, "latest question")
    assert messages[0].role == "system" and messages[0].content == "SYSTEM PROMPT"
    assert messages[-1].content == "latest question"
    kept = [m.content for m in messages if m.role == "user"]
    assert "question number 9" in kept[-2] and not any("number 0 " in k for k in kept)
    assert memory.dropped > 0
    assert sum(count(m.content) for m in messages) <= 60 + 8 * 10


def test_interrupted_turn_is_marked_in_the_prompt():
    memory = Memory("S")
    memory.add(Turn("tell me a story", "Once upon a", interrupted=True))
    prompt = few_shot_prompt(memory.messages(lambda t: len(t.split()), "stop"))
    assert "Assistant: Once upon a [interrupted]" in prompt
    assert prompt.endswith("User: stop\nAssistant:")


def test_a_turn_note_stays_in_the_history_so_the_prompt_only_grows_at_its_end():
    memory = Memory("S")
    count = lambda text: len(text.split())  # noqa: E731
    first = few_shot_prompt(memory.messages(count, "hello", "(The user is speaking slowly.)"))
    memory.add(Turn("hello", "Hi there.", note="(The user is speaking slowly.)"))
    second = few_shot_prompt(memory.messages(count, "how are you", "(The user sounds hurried.)"))
    assert second.startswith(first.removesuffix("Assistant:"))  # the LLM's cache stays valid
    assert "(The user sounds hurried.)\nUser: how are you\nAssistant:" in second
