"""Prompting a base model as an assistant, and cutting its output into speakable pieces."""

from __future__ import annotations

import re

from duetto.llm import Message

# Role names in the few-shot transcript. A base model continues the pattern it sees.
USER, AGENT = "User", "Assistant"

# The model would go on to write the user's next line; these end its turn.
STOP = ("\nUser", "\nAssistant", "User:", "\n\n", "\n(", "<end_of_turn>", "<start_of_turn>")

EXAMPLES = (
    ("Hi there, who am I talking to?", "Hi, I'm duetto, a voice assistant. How can I help you today?"),
    ("What is the capital of France?", "The capital of France is Paris."),
    ("How many days are there in a week?", "There are seven days in a week."),
    ("Can you give me a tip for sleeping better?", "Try to go to bed at the same time every night and keep screens out of the bedroom."),
    ("Why is the sky blue?", "Sunlight scatters off the air, and blue light scatters the most, so the sky looks blue."),
    ("Tell me a joke.", "Why did the scarecrow win an award? Because he was outstanding in his field."),
)  # fmt: skip

MAX_SENTENCES = 2
FALLBACK = "Sorry, I didn't catch that. Could you say it another way?"

_ROLE_TAG = re.compile(r"\b(?:User|Assistant|Customer|System|duetto)\s*:\s*", re.IGNORECASE)
_MARKUP = re.compile(r"<[^>]{1,40}>|[*_#`~\[\]{}]|https?://\S+")
_SENTENCE_END = re.compile(r"(?<=[.!?])[\"')\]]*\s+")
# A clause boundary worth starting speech at: sentence ends, or a comma/semicolon/colon after
# enough words that the phrase sounds natural on its own.
_CLAUSE_BREAK = re.compile(r"[.!?](?:[\"')\]]*)\s|[,;:]\s")
MIN_CLAUSE_WORDS = 4
# A run of words with no punctuation at all (a model that rambles, or does not punctuate) is
# spoken in pieces this long, so the first audio does not wait for the whole run.
MAX_CLAUSE_WORDS = 12


def few_shot_prompt(messages: list[Message]) -> str:
    """A plain-text dialogue: system line, examples, the conversation, and an open agent line."""
    system = messages[0].content if messages and messages[0].role == "system" else ""
    lines = [system.strip(), ""]
    for user, agent in EXAMPLES:
        lines += [f"{USER}: {user}", f"{AGENT}: {agent}"]
    for m in messages:
        if m.role == "user":
            lines.append(f"{USER}: {_one_line(m.content)}")
        elif m.role == "assistant":
            lines.append(f"{AGENT}: {_one_line(m.content)}")
        elif m is not messages[0]:
            lines.append(f"({_one_line(m.content).strip('()')})")  # a note on this turn
    lines.append(f"{AGENT}:")
    return "\n".join(lines)


def _one_line(text: str) -> str:
    return " ".join(text.split())


def clean_reply(text: str, max_sentences: int = MAX_SENTENCES) -> str:
    """What the agent will say: no role tags or markup, at most ``max_sentences`` whole sentences."""
    for stop in STOP:
        text = text.split(stop)[0]
    text = _MARKUP.sub(
        "", _ROLE_TAG.split(text)[0] if _ROLE_TAG.match(text) is None else _ROLE_TAG.sub("", text)
    )
    text = " ".join(text.split())
    sentences = [s for s in _SENTENCE_END.split(text) if s.strip()]
    kept = sentences[:max_sentences]
    if kept and not re.search(r"[.!?][\"')\]]*$", kept[-1]):
        # An unfinished last sentence (the token cap hit mid-way): drop it, or end it cleanly.
        if len(kept) > 1:
            kept = kept[:-1]
        else:
            kept[-1] = kept[-1].rstrip(",;:- ") + "."
    reply = " ".join(kept).strip()
    return reply if _is_speakable(reply) else ""


def _is_speakable(text: str) -> bool:
    return sum(c.isalpha() for c in text) >= 2


class ClauseSplitter:
    """Feeds on streamed tokens and hands out clauses as soon as each is complete.

    Synthesis can then start on the first clause while the LLM is still writing the rest.
    """

    def __init__(self, max_sentences: int = MAX_SENTENCES):
        self.buffer = ""
        self.sentences = 0
        self.max_sentences = max_sentences
        self.stopped = False  # a stop sequence arrived: the buffer is all there will be
        self.capped = False  # the sentence cap is reached: anything more is dropped

    @property
    def done(self) -> bool:
        return self.stopped or self.capped

    def feed(self, token: str) -> list[str]:
        if self.done:
            return []
        self.buffer += token
        for stop in STOP:
            if stop in self.buffer:
                self.buffer = self.buffer.split(stop)[0] + " "  # the end is a clause boundary
                self.stopped = True
        out = []
        while not self.capped:
            clause = self._next_clause()
            if clause is None:
                break
            out.append(clause)
        return [c for c in out if c]

    def _next_clause(self) -> str | None:
        start = 0
        while True:
            match = _CLAUSE_BREAK.search(self.buffer, start)
            if match is None:
                return self._long_run()
            candidate = self.buffer[: match.end()]
            ends_sentence = candidate.rstrip()[-1:] in ".!?" or candidate.rstrip()[-2:-1] in ".!?"
            if ends_sentence or len(candidate.split()) >= MIN_CLAUSE_WORDS:
                self.buffer = self.buffer[match.end() :]
                if ends_sentence:
                    self.sentences += 1
                    self.capped = self.sentences >= self.max_sentences
                return _tidy(candidate)
            start = match.end()

    def _long_run(self) -> str | None:
        """The first MAX_CLAUSE_WORDS words of an unpunctuated run, once a space follows them."""
        words = self.buffer.split(maxsplit=MAX_CLAUSE_WORDS)
        if len(words) <= MAX_CLAUSE_WORDS:
            return None  # (with a 13th item, the 12th word is complete: a space came after it)
        clause = " ".join(words[:MAX_CLAUSE_WORDS])
        self.buffer = words[MAX_CLAUSE_WORDS]
        return _tidy(clause)

    def flush(self) -> str:
        """The rest once the LLM has finished (cleaned; may be empty)."""
        rest, self.buffer = self.buffer, ""
        if self.capped or not rest.strip():
            return ""
        return _tidy(clean_reply(rest, max_sentences=1))


def _tidy(text: str) -> str:
    text = _MARKUP.sub("", _ROLE_TAG.sub("", text))
    text = " ".join(text.split())
    return text if _is_speakable(text) else ""
