"""A target-speaker cue for the learned word filter (issue 6): is each word in the voice of the
clip's main talker? The search for the cue, on ``fit`` only (docs/robustness.md).

For every word of a decode cached by bench/word_filter.py, the Resemblyzer embedding of a window
centred on the word is compared by cosine with references taken from the same clip. Round 2
(``speaker_columns``): 0.8 s and 1.6 s windows against the whole clip's embedding, the other
words' windows (probability-weighted), the clip's loudest 40% and quietest 30% of mel frames;
and pitch cues (autocorrelation peak, F0 against the confident words' median). Round 3
(``speaker_columns3``): 0.3 s and 0.5 s windows and the word's own span, against the loud and
quiet frames, the confident words' frames and the frames outside every word. ``feats`` caches
the columns of a set's greedy decodes; ``explore`` prints each column's mean for correct words
and insertions and its AUC, then fit's speaker-grouped cross-validation of the classifier with
the chosen column sets. The winner (0.8 s window against the loud and quiet frames) is
``duetto.asr.word_filter.speaker_similarity``; bench/word_filter.py fits and scores it
(``cv --speaker``, ``fit --speaker``).

    S="nice -n 10 .venv/bin/python bench/word_filter_speaker.py"
    $S feats --set fit; $S feats --set fit --round 3
    $S explore --all-forms --sets "lq80=sim_loud_w80+sim_quiet_w80;lq50=sim_loud_w50+sim_quiet_w50"
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "bench"))

import word_filter as wf  # noqa: E402

FRAMES_PER_S = 100  # Resemblyzer's mel hop is 10 ms
WINDOWS = (80, 160)  # frames: 0.8 s, and Resemblyzer's own 1.6 s partial
LOUD_SHARE, QUIET_SHARE = 0.4, 0.3  # mel frames taken as the talker's / the background's


def _normalized(audio: np.ndarray) -> np.ndarray:
    """-30 dBFS RMS, Resemblyzer's level (its mel is linear power, so level matters)."""
    rms = float(np.sqrt(np.mean(np.square(audio, dtype=np.float64)))) or 1.0
    return np.clip(audio * (10 ** (-30 / 20) / rms), -1, 1).astype(np.float32)


def speaker_columns(words, audio: np.ndarray) -> dict[str, np.ndarray]:
    """Round 1 and 2 candidates (``words``: [word, start, end, probability] rows)."""
    import torch
    from resemblyzer import audio as raudio

    from duetto.safety.voiceprint import _encoder

    enc = _encoder()
    x = _normalized(audio)
    mel = raudio.wav_to_mel_spectrogram(x)
    probs = np.array([w[3] for w in words])
    with torch.no_grad():
        clip = enc.embed_utterance(x)
    clip = clip / (np.linalg.norm(clip) + 1e-12)
    energy = mel.sum(axis=1)
    order = np.argsort(energy)
    loud_ref = _ref(enc, mel, order[-max(int(LOUD_SHARE * len(mel)), 20) :])
    quiet_ref = _ref(enc, mel, order[: max(int(QUIET_SHARE * len(mel)), 20)])
    out = {}
    for width in WINDOWS:
        m = mel if len(mel) >= width else np.pad(mel, ((0, width - len(mel)), (0, 0)))
        starts = []
        for _, s, e, _ in words:
            c = int(round((s + e) / 2 * FRAMES_PER_S))
            starts.append(min(max(c - width // 2, 0), len(m) - width))
        batch = np.stack([m[a : a + width] for a in starts])
        with torch.no_grad():
            emb = enc(torch.from_numpy(batch)).numpy().astype(np.float64)
        out[f"sim_clip_w{width}"] = emb @ clip
        weighted = emb * probs[:, None]
        total = weighted.sum(axis=0)
        loo = total[None, :] - weighted
        loo /= np.linalg.norm(loo, axis=1, keepdims=True) + 1e-12
        sims = np.sum(emb * loo, axis=1)
        if len(words) == 1:
            sims = emb @ clip
        out[f"sim_loo_w{width}"] = sims
        out[f"sim_loud_w{width}"] = emb @ loud_ref
        out[f"sim_quiet_w{width}"] = emb @ quiet_ref
    out.update(pitch_columns(words, audio))
    return out


def speaker_columns3(words, audio: np.ndarray) -> dict[str, np.ndarray]:
    """Round 2 candidates: shorter windows, the word's own span, and references from the
    confident words' frames (talker) and the frames outside every word (background)."""
    import torch
    from resemblyzer import audio as raudio

    from duetto.safety.voiceprint import _encoder

    enc = _encoder()
    mel = raudio.wav_to_mel_spectrogram(_normalized(audio))
    probs = np.array([w[3] for w in words])
    spans = []
    for _, s, e, _ in words:
        a = min(int(s * FRAMES_PER_S), len(mel) - 1)
        spans.append((a, max(int(np.ceil(e * FRAMES_PER_S)), a + 1)))
    inside = np.zeros(len(mel), bool)
    confident = np.zeros(len(mel), bool)
    for (a, b), p in zip(spans, probs, strict=True):
        inside[a:b] = True
        if p >= 0.7:
            confident[a:b] = True
    energy = mel.sum(axis=1)
    order = np.argsort(energy)
    loud = order[-max(int(LOUD_SHARE * len(mel)), 20) :]
    quiet = order[: max(int(QUIET_SHARE * len(mel)), 20)]
    outside = np.flatnonzero(~inside) if (~inside).sum() >= 20 else quiet
    conf = np.flatnonzero(confident) if confident.sum() >= 20 else loud
    refs = {n: _ref(enc, mel, f) for n, f in
            (("loud", loud), ("quiet", quiet), ("outside", outside), ("conf", conf))}  # fmt: skip
    out = {}
    for width in (30, 50):
        m = mel if len(mel) >= width else np.pad(mel, ((0, width - len(mel)), (0, 0)))
        starts = [
            min(max(int(round((s + e) / 2 * FRAMES_PER_S)) - width // 2, 0), len(m) - width)
            for _, s, e, _ in words
        ]
        batch = np.stack([m[a : a + width] for a in starts])
        with torch.no_grad():
            emb = enc(torch.from_numpy(batch)).numpy().astype(np.float64)
        for n, r in refs.items():
            out[f"sim_{n}_w{width}"] = emb @ r
    span_emb = []
    for a, b in spans:
        a2, b2 = a, b
        if b2 - a2 < 30:
            c = (a + b) // 2
            a2, b2 = max(c - 15, 0), min(max(c - 15, 0) + 30, len(mel))
        with torch.no_grad():
            e = enc(torch.from_numpy(np.ascontiguousarray(mel[None, a2:b2]))).numpy()[0]
        span_emb.append(e.astype(np.float64))
    span_emb = np.array(span_emb)
    for n, r in refs.items():
        out[f"sim_{n}_span"] = span_emb @ r
    # the 0.8 s window against the new references
    m = mel if len(mel) >= 80 else np.pad(mel, ((0, 80 - len(mel)), (0, 0)))
    starts = [
        min(max(int(round((s + e) / 2 * FRAMES_PER_S)) - 40, 0), len(m) - 80)
        for _, s, e, _ in words
    ]
    with torch.no_grad():
        emb = enc(torch.from_numpy(np.stack([m[a : a + 80] for a in starts]))).numpy()
    for n, r in refs.items():
        out[f"sim_{n}_w80"] = emb.astype(np.float64) @ r
    return out


def _ref(enc, mel: np.ndarray, frames: np.ndarray) -> np.ndarray:
    import torch

    seq = mel[np.sort(frames)]
    with torch.no_grad():
        e = enc(torch.from_numpy(np.ascontiguousarray(seq[None]))).numpy()[0].astype(np.float64)
    return e / (np.linalg.norm(e) + 1e-12)


PITCH_FRAME = 512  # 32 ms at 16 kHz
MIN_LAG, MAX_LAG = 40, 267  # 400 Hz .. 60 Hz


def frame_pitch(audio: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per 32 ms frame (hop 16 ms): the normalized autocorrelation peak in 60-400 Hz and its F0."""
    hop = PITCH_FRAME // 2
    n = max((len(audio) - PITCH_FRAME) // hop + 1, 1)
    x = np.zeros(PITCH_FRAME + (n - 1) * hop, np.float64)
    x[: min(len(audio), len(x))] = audio[: len(x)]
    idx = np.arange(PITCH_FRAME)[None, :] + hop * np.arange(n)[:, None]
    frames = x[idx]
    frames = frames - frames.mean(axis=1, keepdims=True)
    spec = np.fft.rfft(frames * np.hanning(PITCH_FRAME), 2 * PITCH_FRAME, axis=1)
    ac = np.fft.irfft(np.abs(spec) ** 2, axis=1)[:, : MAX_LAG + 1]
    ac = ac / (ac[:, :1] + 1e-12)
    lag = MIN_LAG + np.argmax(ac[:, MIN_LAG:], axis=1)
    return ac[np.arange(n), lag], 16000.0 / lag


def pitch_columns(words, audio: np.ndarray) -> dict[str, np.ndarray]:
    harm, f0 = frame_pitch(audio)
    hop_s = PITCH_FRAME / 2 / 16000
    spans = []
    for _, s, e, _ in words:
        a = min(int(s / hop_s), len(harm) - 1)
        b = max(int(np.ceil(e / hop_s)), a + 1)
        spans.append((a, b))
    probs = np.array([w[3] for w in words])
    h = np.array([harm[a:b].mean() for a, b in spans])
    voiced = [(f0[a:b])[harm[a:b] > 0.5] for a, b in spans]
    share = np.array([np.mean(harm[a:b] > 0.5) for a, b in spans])
    confident = [v for v, p in zip(voiced, probs, strict=True) if p >= 0.5 and len(v)]
    pool = np.concatenate(confident) if confident else np.concatenate([*voiced, [np.nan]])
    ref = np.nanmedian(pool) if np.any(np.isfinite(pool)) else np.nan
    dev = np.array(
        [abs(np.log2(np.median(v) / ref)) if len(v) and np.isfinite(ref) else 0.5 for v in voiced]
    )
    return {
        "harmonicity": h,
        "harm_vs_clip": h - np.median(h),
        "f0_dev": np.minimum(dev, 1.0),
        "voiced_share": share,
    }


ROUND = {2: speaker_columns, 3: speaker_columns3}


def _feature_cache(set_name: str, beam: int, round_: int = 2) -> Path:
    return wf.CACHE / f"{set_name}-{wf.MODEL}-beam{beam}-speaker{round_}.jsonl"


def feats(args) -> int:
    torch_threads()
    recs = wf._read(wf._decodes(args.set, args.beam))
    path = _feature_cache(args.set, args.beam, args.round)
    done = {(r["id"], r["condition"]) for r in wf._read(path)}
    todo = [
        r
        for r in recs
        if r["snr"] < wf.GATE_DB and r["words"] and (r["id"], r["condition"]) not in done
    ]
    started = time.perf_counter()
    with path.open("a") as sink:
        for k, rec in enumerate(todo):
            audio = np.load(wf._clip(args.set, rec["id"], rec["condition"]))
            cols = ROUND[args.round](rec["words"], audio)
            row = {"id": rec["id"], "condition": rec["condition"]}
            row.update({n: [round(float(v), 5) for v in c] for n, c in cols.items()})
            sink.write(json.dumps(row) + "\n")
            if k % 100 == 0:
                rate = (time.perf_counter() - started) / (k + 1)
                print(f"  {k}/{len(todo)} {rate * 1000:.0f} ms/clip", file=sys.stderr, flush=True)
    return 0


def torch_threads() -> None:
    import torch

    torch.set_num_threads(1)


def _labelled(set_name: str, beam: int):
    """Rows of (base features, speaker columns, label, speaker) for the labelled words, and the
    speaker columns' names (every cached round)."""
    from duetto.asr.word_filter import word_features

    caches = [wf._read(_feature_cache(set_name, beam, r)) for r in ROUND]
    caches = [{(r["id"], r["condition"]): r for r in c} for c in caches if c]
    names = [k for c in caches for k in next(iter(c.values())) if k not in ("id", "condition")]
    xs, ss, ys, speakers = [], [], [], []
    for rec in wf._read(wf._decodes(set_name, beam)):
        if rec["snr"] >= wf.GATE_DB or not rec["words"]:
            continue
        audio = np.load(wf._clip(set_name, rec["id"], rec["condition"]))
        out = wf._transcription(rec)
        base = word_features(wf._words(out), audio, rec["no_speech"])
        key = rec["id"], rec["condition"]
        merged = {k: v for c in caches for k, v in c[key].items()}
        extra = np.column_stack([merged[c] for c in names])
        labels = wf.word_labels([w[0] for w in rec["words"]], rec["ref"])
        for b, e, label in zip(base, extra, labels, strict=True):
            if label is not None:
                xs.append(b)
                ss.append(e)
                ys.append(label)
                speakers.append(rec["speaker"])
    return np.array(xs), np.array(ss), np.array(ys, np.float64), speakers, names


def _auc(score: np.ndarray, y: np.ndarray) -> float:
    from scipy.stats import rankdata

    r = rankdata(score)
    pos = y == 1
    return float((r[pos].sum() - pos.sum() * (pos.sum() + 1) / 2) / (pos.sum() * (~pos).sum()))


def explore(args) -> int:
    """Each speaker column's separation on fit, then the cross-validated classifier with each
    set of columns (``--sets "name=col+col;..."``; base features always in)."""
    import zlib

    from duetto.asr.word_filter import LearnedWordFilter

    x, s, y, speakers, names = _labelled("fit", args.beam)
    print(f"fit: {len(y)} labelled words, {int((1 - y).sum())} insertions")
    for j, n in enumerate(names):
        col = s[:, j]
        print(f"  {n:>18}: correct {col[y == 1].mean():.3f}, insertions {col[y == 0].mean():.3f}, "
              f"AUC {_auc(col, y):.3f}")  # fmt: skip
    fold = np.array([zlib.crc32(sp.encode()) % wf.CV_FOLDS for sp in speakers])
    sets = {"base": []}
    for spec in filter(None, (args.sets or "").split(";")):
        label, cols = spec.split("=")
        sets[label] = [names.index(c) for c in cols.split("+")]
    forms = ((1, 1e-2), (2, 1e-2), (2, 1e-1)) if args.all_forms else ((1, 1e-2),)
    for label, cols in sets.items():
        feats_ = np.column_stack([x, s[:, cols]]) if cols else x
        for degree, l2 in forms:
            p = np.zeros(len(y))
            for k in range(wf.CV_FOLDS):
                tr = fold != k
                m = wf.fit_logistic(feats_[tr], y[tr], l2, degree=degree)
                p[~tr] = LearnedWordFilter(*m, 0.5, degree).probabilities(feats_[~tr])
            gains = [((p < t) & (y == 0)).sum() - ((p < t) & (y == 1)).sum() for t in wf.THRESHOLDS]
            k = int(np.argmax(gains))
            loss = -np.mean(y * np.log(p + 1e-9) + (1 - y) * np.log(1 - p + 1e-9))
            print(f"  {label:>20} degree {degree} ridge {l2:g}: net removal "
                  f"{100 * gains[k] / len(y):.2f} per 100 at {wf.THRESHOLDS[k]}, "
                  f"log loss {loss:.4f}, AUC {_auc(p, y):.3f}", flush=True)  # fmt: skip
    return 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    f = sub.add_parser("feats")
    f.add_argument("--set", choices=("fit", "held", "dev"), required=True)
    f.add_argument("--beam", type=int, default=1)
    f.add_argument("--round", type=int, default=2, choices=(2, 3))
    e = sub.add_parser("explore")
    e.add_argument("--beam", type=int, default=1)
    e.add_argument("--sets", help='column sets, e.g. "talker=sim_loud_w80+sim_quiet_w80"')
    e.add_argument("--all-forms", action="store_true", help="pairwise forms too")
    args = ap.parse_args()
    return {"feats": feats, "explore": explore}[args.cmd](args)


if __name__ == "__main__":
    sys.exit(main())
