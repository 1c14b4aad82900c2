"""What did the caller ask? Intent (BANKING77), dialogue acts (NLU++) and slots, in one pass.

One forward pass of MiniLM-L6 fine-tuned on BANKING77 train (int8 ONNX, ``data/bank-minilm-int8.onnx``,
run on onnxruntime: no torch at run time) gives the 77 intent logits, the pooled layers 4-6
and the last layer's token states. Small linear heads in ``data/nlu.npz`` read the latter: a
BANKING77 head whose log-probabilities are mixed with the fine-tuned logits, NLU++ dialogue acts
(multi-label) and BIO slot tags per word.
``bench/bank_finetune.py`` reproduces both files from ``../shared/data/banking``.
A second intent model, all-mpnet-base-v2 fine-tuned (duetto.apps.bank.mpnet), is mixed into the
intent distribution when it can run here.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from duetto.apps.bank.encoder import MAX_TOKENS, Encoded, _word_states, split_words
from duetto.apps.bank.heads import LinearHead
from duetto.apps.bank.mpnet import WEIGHT as SECOND_WEIGHT
from duetto.apps.bank.mpnet import shared_second_model
from duetto.apps.bank.training import predict_slots
from duetto.errors import ModelNotFoundError
from duetto.fusion.text import DATA_DIR as FUSION_DATA
from duetto.fusion.text import TOKENIZER_FILE
from duetto.models import onnx_session

DATA_DIR = Path(__file__).parent / "data"
WEIGHTS = DATA_DIR / "nlu.npz"
MODEL_FILE = "bank-minilm-int8.onnx"
# The fine-tuned model keeps the bundled MiniLM's word pieces; the fusion package ships that
# tokenizer already.
TOKENIZER = FUSION_DATA / TOKENIZER_FILE
# A dialogue act counts when its sigmoid passes this (the threshold used in the CV report).
ACT_THRESHOLD = 0.5
# Whisper's previous-text context for a bank call: the words BANKING77 intents turn on, among
# them those tiny.en misheard in spoken *train* queries (card/car, PIN/pen/bin, pending/spending,
# auto top-up, SEPA, cheque). Measured with bench/bank_spoken.py --prompt (docs/bank.md).
ASR_PROMPT = (
    "Bank customer service call about my card, PIN, ATM, top-up, transfer, pending payment, "
    "declined card payment, refund, exchange rate, cash withdrawal, direct debit, passcode, "
    "virtual card, Apple Pay, SEPA, cheque, verify my identity."
)
# Whisper's beam for a bank call: five hypotheses kept instead of greedy decoding. On 231 spoken
# *train* queries (tiny.en + ASR_PROMPT, same audio) intent accuracy rose 92.6% -> 93.5% clean and
# 73.6% -> 77.5% in babble at 5 dB, for ~0.04 s more CPU per utterance (bench/bank_spoken.py
# --beam/--nbest, bench/bank_spoken_nlu.py; docs/bank.md). Whisper base with the same beam was
# better still (95.2% / 79.7%) but at twice the CPU; asr.model = "bundled-base" opts in.
ASR_BEAM_SIZE = 5
# The beam's 5 best hypotheses reach the agent (asr.nbest), and the intent is read from their
# intent distributions averaged (BankNLU.nbest_probs). Five are what that beam keeps: no wider
# search, ~0 s more CPU a decode (bench/asr_nbest.py). Spoken test queries: 87.1% -> 88.8% clean,
# 68.2% -> 72.0% in babble at 5 dB (docs/bank.md).
ASR_NBEST = 5
# Weights of the hypotheses: softmax(mean token log-probability / T). Chosen on the 231 spoken
# *train* queries (bench/bank_spoken_nlu.py --temperatures; docs/bank.md).
NBEST_TEMPERATURE = 0.5
REBUILD = "rebuild with: python bench/bank_finetune.py holdout --ship (see docs/bank.md)"


@dataclass(frozen=True)
class Slot:
    name: str
    text: str
    start: int
    end: int


@dataclass(frozen=True)
class Understanding:
    text: str
    intent: str  # one of the 77 BANKING77 intents
    confidence: float
    acts: frozenset[str]  # NLU++ intents above ACT_THRESHOLD
    slots: tuple[Slot, ...]
    ms: float  # time to understand, milliseconds

    def slot(self, name: str) -> Slot | None:
        return next((s for s in self.slots if s.name == name), None)


@dataclass(frozen=True)
class IntentEncoded(Encoded):
    """:class:`Encoded` plus the fine-tuned model's BANKING77 intent logits."""

    logits: np.ndarray  # (77,)


def _require(path: Path) -> Path:
    if not path.is_file():
        raise ModelNotFoundError(f"bank NLU file missing: {path}", REBUILD)
    return path


def query_tokenizer(path: Path):
    """A ``tokenizers`` tokenizer for one query at a time, cut at MAX_TOKENS word pieces."""
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(path))
    tokenizer.no_padding()
    tokenizer.enable_truncation(MAX_TOKENS)
    return tokenizer


def query_session(model: Path, threads: int):
    """An onnxruntime session for short queries: one thread by default (a query takes a few
    ms, and the ASR and LLM want the other cores), no log noise."""
    import onnxruntime

    opts = onnxruntime.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.log_severity_level = 3
    return onnx_session(model, opts)


class OnnxEncoder:
    """The fine-tuned MiniLM on onnxruntime: intent logits, sentence feature, word vectors."""

    def __init__(self, model: Path = DATA_DIR / MODEL_FILE, threads: int = 1):
        self.tokenizer = query_tokenizer(_require(TOKENIZER))
        self.session = query_session(_require(model), threads)

    def encode(self, texts: list[str], batch_size: int = 64) -> list[IntentEncoded]:
        out: list[IntentEncoded] = []
        for start in range(0, len(texts), batch_size):
            out += self._encode_batch(texts[start : start + batch_size])
        return out

    def _encode_batch(self, texts: list[str]) -> list[IntentEncoded]:
        encodings = self.tokenizer.encode_batch(texts)
        n = max(len(e.ids) for e in encodings)
        ids = np.zeros((len(texts), n), np.int64)
        mask = np.zeros((len(texts), n), np.int64)
        offsets = np.zeros((len(texts), n, 2), np.int64)
        for row, e in enumerate(encodings):
            ids[row, : len(e.ids)] = e.ids
            mask[row, : len(e.ids)] = 1
            offsets[row, : len(e.ids)] = e.offsets
        feeds = {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)}
        logits, pooled, last = self.session.run(None, feeds)
        result = []
        for row, text in enumerate(texts):
            words = split_words(text)
            states = _word_states(words, offsets[row], last[row].astype(np.float32))
            result.append(IntentEncoded(text, pooled[row], tuple(words), states, logits[row]))
        return result


@lru_cache(maxsize=1)
def shared_encoder() -> OnnxEncoder:
    """One session per process (loading takes well under a second)."""
    return OnnxEncoder()


def log_softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(-1, keepdims=True)
    return z - np.log(np.exp(z).sum(-1, keepdims=True))


def hypothesis_weights(scores, temperature: float = NBEST_TEMPERATURE) -> np.ndarray:
    """How much each ASR hypothesis counts: ``softmax(score / temperature)`` over their mean
    token log-probabilities (temperature -> 0: the best one alone)."""
    return np.exp(log_softmax(np.asarray(scores, np.float64) / temperature))


class BankNLU:
    """Loads the model and the shipped heads; :meth:`understand` one utterance at a time."""

    def __init__(self, weights: Path = WEIGHTS, encoder: OnnxEncoder | None = None, second=True):
        arrays = np.load(_require(weights), allow_pickle=False)
        self.intents = LinearHead.from_arrays(arrays, "b77")
        self.intent_labels = self.intents.labels
        # The linear head's share of the log-probabilities (chosen on a holdout of train).
        self.mix = float(arrays["b77_mix"])
        self.acts = LinearHead.from_arrays(arrays, "acts")
        self.slots = LinearHead.from_arrays(arrays, "slots")
        self.encoder = encoder or shared_encoder()
        # The fine-tuned mpnet (duetto.apps.bank.mpnet) mixed in when it can run here; False:
        # MiniLM alone; or a model with ``logits(text)``.
        if second is True:
            second = shared_second_model()
        self.second = second or None

    def intent_probs(self, enc: IntentEncoded) -> np.ndarray:
        """The fine-tuned model's intent distribution mixed with the linear head's, then with
        the second model's (``SECOND_WEIGHT``) when there is one."""
        mixed = (1 - self.mix) * log_softmax(enc.logits) + self.mix * log_softmax(
            self.intents.logits(enc.sentence)
        )
        if self.second is not None:
            mixed = (1 - SECOND_WEIGHT) * log_softmax(mixed) + SECOND_WEIGHT * log_softmax(
                self.second.logits(enc.text)
            )
        return np.exp(log_softmax(mixed))

    def nbest_probs(
        self,
        hypotheses,
        temperature: float = NBEST_TEMPERATURE,
        memo: dict[str, np.ndarray] | None = None,
    ) -> np.ndarray:
        """The intent distribution averaged over ASR ``hypotheses`` ((text, mean token
        log-probability), as ``Transcription.alternatives``), each weighted by
        :func:`hypothesis_weights`. Each text is encoded alone, as at run time; ``memo`` (text ->
        intent distribution) is read and filled, so a text is encoded once."""
        memo = {} if memo is None else memo
        texts = [text for text, _ in hypotheses]
        for text in dict.fromkeys(texts):
            if text not in memo:
                memo[text] = self.intent_probs(self.encoder.encode([text or " "])[0])
        weights = hypothesis_weights([score for _, score in hypotheses], temperature)
        return weights @ np.stack([memo[text] for text in texts])

    def understand(self, text: str, alternatives=()) -> Understanding:
        """Intent, dialogue acts and slots of ``text``. With ``alternatives`` (the ASR's n-best,
        ``text`` among them) the intent comes from :meth:`nbest_probs`: a word the best
        hypothesis misheard is often right in the others. Acts and slots stay ``text``'s."""
        start = time.perf_counter()
        enc = self.encoder.encode([text or " "])[0]
        probs = self.intent_probs(enc)
        if len(alternatives) > 1:
            probs = self.nbest_probs(alternatives, memo={text: probs})
        best = int(probs.argmax())
        act_probs = self.acts.sigmoid(enc.sentence)
        acts = frozenset(self.acts.labels[i] for i in np.flatnonzero(act_probs >= ACT_THRESHOLD))
        slots = tuple(Slot(name, text[a:b], a, b) for name, a, b in predict_slots(self.slots, enc))
        ms = (time.perf_counter() - start) * 1000
        return Understanding(text, self.intent_labels[best], float(probs[best]), acts, slots, ms)
