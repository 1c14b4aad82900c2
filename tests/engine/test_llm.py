"""The bundled base model answers like an assistant: 20 varied questions, real model."""

import re

import pytest

from duetto.config import Settings
from duetto.dialogue import Conversation, Memory
from duetto.llm.prompt import EXAMPLES

QUESTIONS = [
    "What is the capital of Japan?",
    "How do I make a cup of tea?",
    "What's the weather like on Mars?",
    "Can you recommend a good movie?",
    "How many legs does a spider have?",
    "Who wrote Romeo and Juliet?",
    "Why do cats purr?",
    "What should I cook for dinner tonight?",
    "How far away is the moon?",
    "Tell me something interesting about octopuses.",
    "How can I learn to play the guitar?",
    "What is the boiling point of water?",
    "Do you like music?",
    "What's a good name for a dog?",
    "How do airplanes fly?",
    "I feel tired today.",
    "What's your name?",
    "Is it healthy to drink coffee every day?",
    "can u help me plan a trip to london",
    "Thank you, goodbye!",
]
COMMON_WORDS = set(
    "the a an is are was i you it to of and in on for with that this be can your my do not yes no "
    "there they we he she at by from have has about like or so what how".split()
)
LEAKS = re.compile(
    r"\b(user|assistant|customer|system)\s*:|<[a-z_/]+>|friendly voice assistant", re.I
)


@pytest.fixture(scope="module")
def conversation():
    settings = Settings()
    return Conversation.from_settings(settings)


@pytest.mark.parametrize("question", QUESTIONS)
def test_reply_is_short_clean_english(conversation, question):
    conversation.memory = Memory(conversation.settings.system_prompt)  # each question on its own
    reply = conversation.reply_text(question)
    assert reply.strip(), "empty reply"
    letters = [c for c in reply if c.isalpha()]
    assert sum(c.isascii() for c in letters) / len(letters) > 0.95
    words = re.findall(r"[a-z']+", reply.lower())
    assert COMMON_WORDS & set(words) or len(words) <= 3, f"not English-looking: {reply!r}"
    sentences = [s for s in re.split(r"(?<=[.!?])\s+", reply.strip()) if s]
    assert len(sentences) <= 2, reply
    assert not LEAKS.search(reply), reply
    assert not any(answer in reply for _, answer in EXAMPLES), f"copied a prompt example: {reply!r}"


def test_memory_carries_context_across_turns(conversation):
    conversation.memory = Memory(conversation.settings.system_prompt)
    first = conversation.reply_text("My name is Priya.")
    conversation.reply_text("What is my name?")
    prompt_turns = conversation.memory.messages(conversation.llm.count_tokens, "next")
    roles = [m.role for m in prompt_turns]
    assert roles == ["system", "user", "assistant", "user", "assistant", "user"]
    assert prompt_turns[1].content == "My name is Priya." and prompt_turns[2].content == first


def test_the_prompt_prefix_is_evaluated_before_the_first_turn():
    """Loading a conversation evaluates the system line and examples, so the first question only
    costs its own tokens: the fresh llama.cpp context already holds that prefix."""
    from duetto.llm.prompt import AGENT, few_shot_prompt

    settings = Settings()
    settings.llm.context += 256  # a model of its own, not the one other tests have used
    conversation = Conversation.from_settings(settings)
    llm = conversation.llm
    system_only = few_shot_prompt(conversation.memory.messages(llm.count_tokens))
    shared = system_only[: system_only.rindex(f"{AGENT}:")].strip()
    first = few_shot_prompt(conversation.memory.messages(llm.count_tokens, "Hi there!"))
    assert first.startswith(shared) and llm.count_tokens(shared) > 100
    held = llm.llama.detokenize(llm.llama._input_ids[: llm.llama.n_tokens].tolist()).decode()
    assert held.strip().startswith(shared)


def test_the_same_prompt_gets_the_same_reply_whatever_came_before(conversation):
    """Sampling (temperature > 0) is seeded per reply, so a reply does not depend on how many
    replies or cancelled speculative starts the process made before it."""
    from duetto.llm import Message

    llm = conversation.llm
    messages = [Message("system", conversation.memory.system_prompt), Message("user", "Hello!")]

    def reply():
        return "".join(llm.stream(messages, max_tokens=16, temperature=0.9))

    first = reply()
    started = llm.stream(
        [*messages[:1], Message("user", "Tell me a story.")], max_tokens=16, temperature=0.9
    )
    next(started)  # a reply started and dropped, as a discarded speculation is
    started.close()
    assert reply() == first


class _Counting:
    """The real LLM, counting the tokens pulled from it; sets ``cancel`` after the first one."""

    def __init__(self, llm, cancel):
        self.llm, self.cancel = llm, cancel
        self.count_tokens = llm.count_tokens
        self.pulled = 0

    def stream(self, messages, **kwargs):
        for piece in self.llm.stream(messages, **kwargs):
            self.pulled += 1
            if self.pulled == 1:
                self.cancel.set()  # the user went on: the speculative reply is dropped
            yield piece


def test_a_cancelled_reply_stops_the_llm_at_the_next_token(conversation):
    import threading

    cancel = threading.Event()
    counting = _Counting(conversation.llm, cancel)
    dropped = Conversation(counting, conversation.settings, Memory("You are a storyteller."))
    clauses = list(
        dropped.respond("Tell me a long story about a dragon and a castle.", cancel=cancel)
    )
    assert clauses == []  # nothing to say once cancelled, not even the fallback line
    assert counting.pulled == 1  # not the ten-odd tokens to the end of the first clause


def test_after_a_turn_the_llm_already_holds_the_conversation_so_far():
    """llm.keep_warm: the next reply evaluates only its own words."""
    from duetto.llm.prompt import few_shot_prompt

    settings = Settings()
    settings.llm.context += 512  # a model of its own
    conversation = Conversation.from_settings(settings)
    llm = conversation.llm
    conversation.record("What is the capital of Spain?", "The capital of Spain is Madrid.")
    assert conversation.warming is not None
    conversation.warming.join(timeout=30)
    held = llm.llama.detokenize(llm.llama._input_ids[: llm.llama.n_tokens].tolist()).decode()
    assert "The capital of Spain is Madrid." in held
    following = few_shot_prompt(conversation.memory.messages(llm.count_tokens, "And France?"))
    history = following[: following.rindex("Madrid.") + len("Madrid.")]
    assert held.strip().startswith(history.strip())

    settings.llm.keep_warm = "off"
    settings.llm.context += 256
    cold = Conversation.from_settings(settings)
    cold.record("What is the capital of Spain?", "The capital of Spain is Madrid.")
    assert cold.warming is None
