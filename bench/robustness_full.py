"""Robustness on the whole dev set: decode each (utterance, condition) once, keep it in a
resumable cache, and score the decoding variants offline from that cache.

Each record holds what the variants need: the transcript of the first decode and, when it is a
repetition loop (compression ratio > 2.4), of each re-decode at rising temperature (the loop
guard), the words with their probabilities, timestamps and audio level (``--mode words``), and
the VAD's miss/false-alarm counts at the fixed and the noise-adapted threshold.

    # decode (resumable; conditions in the order given, so the key ones finish first)
    nice -n 10 .venv/bin/python bench/robustness_full.py decode --mode fast \
        --conditions "clean;babble 5;white 5;babble 0;babble 10;babble 20;white 0;white 10;white 20"
    nice -n 10 .venv/bin/python bench/robustness_full.py decode --mode words --conditions ...
    # train mixtures for tuning the word filters (never dev)
    nice -n 10 .venv/bin/python bench/robustness_full.py decode --split train --limit 200 \
        --mode words --conditions "clean;babble 5;babble 0"
    # score
    .venv/bin/python bench/robustness_full.py score

The cache lives in ``~/.cache/duetto/robustness/`` (one JSONL per split, mode and seed).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "speechocean762"
CACHE = Path(os.environ.get("DUETTO_CACHE", Path.home() / ".cache" / "duetto")) / "robustness"


def cache_file(
    split: str, mode: str, seed: int, model: str = "bundled", denoise: str = "none"
) -> Path:
    tag = ("" if model == "bundled" else f"-{model}") + ("" if denoise == "none" else f"-{denoise}")
    return CACHE / f"{split}-{mode}{tag}-seed{seed}.jsonl"


def read_cache(path: Path) -> dict[tuple[str, str], dict]:
    out: dict[tuple[str, str], dict] = {}
    if path.exists():
        for line in path.read_text().splitlines():
            if line.strip():
                r = json.loads(line)
                out[(r["id"], r["condition"])] = r
    return out


def word_rows(out, audio: np.ndarray) -> list[list]:
    """The cached form of a transcript's words: [word, probability, start, end, level dB]."""
    from duetto.asr.whisper import level_db

    return [[w.word, w.probability, w.start, w.end, round(level_db(audio, w.start, w.end), 2)]
            for w in out.words]  # fmt: skip


def decode(args) -> int:
    from duetto.asr.whisper import (
        FALLBACK_TEMPERATURES,
        MAX_COMPRESSION_RATIO,
        WhisperASR,
        compression_ratio,
    )
    from duetto.audio import SAMPLE_RATE, frame_energies, load_audio
    from duetto.config import ASRSettings
    from duetto.data.evaluate import VAD_THRESHOLD, adaptive_threshold, denoise
    from duetto.data.manifest import read_manifest, subset
    from duetto.data.noise import mix_at_snr, noise_source, stable_rng
    from duetto.vad import load_vad, speech_probabilities

    utts = subset(read_manifest(DATA / f"{args.split}.jsonl"), args.limit)
    # Another compute type is cached as its own model: ``aligned@bundled+float32`` when scoring.
    tag = args.model if args.compute_type == "int8" else f"{args.model}+{args.compute_type}"
    path = cache_file(args.split, args.mode, args.seed, tag, args.denoise)
    path.parent.mkdir(parents=True, exist_ok=True)
    done = read_cache(path)
    asr = WhisperASR(
        ASRSettings(model=args.model, threads=args.threads, compute_type=args.compute_type)
    )
    vad = load_vad()
    sources: dict = {}
    words = args.mode == "words"
    conditions = [c.strip() for c in args.conditions.split(";") if c.strip()]
    with path.open("a") as sink:
        for label in conditions:
            noise, snr = (label, None) if label == "clean" else label.split()
            todo = [u for u in utts if (u.id, label) not in done]
            print(f"{label}: {len(todo)} of {len(utts)} to decode", file=sys.stderr, flush=True)
            for k, utt in enumerate(todo):
                clean = load_audio(utt.audio)
                audio = clean
                if noise != "clean":
                    if noise not in sources:
                        sources[noise] = noise_source(noise, DATA / "train.jsonl")
                    rng = stable_rng(args.seed, utt.id, noise, float(snr))
                    n = sources[noise].noise(len(clean), rng, exclude_speaker=utt.speaker)
                    audio = mix_at_snr(clean, n, float(snr)).audio
                audio = denoise(audio, args.denoise)
                record = {
                    "id": utt.id,
                    "condition": label,
                    "ref": utt.text,
                    "duration": len(audio) / SAMPLE_RATE,
                }
                if args.mode == "fast":  # VAD counts once per condition, with the fast decode
                    ref = speech_probabilities(clean, vad) >= VAD_THRESHOLD
                    probs = speech_probabilities(audio, vad)
                    adapt = adaptive_threshold(audio)
                    record["vad"] = {
                        "speech": int(ref.sum()),
                        "silence": int((~ref).sum()),
                        "miss": int((ref & (probs < VAD_THRESHOLD)).sum()),
                        "fa": int((~ref & (probs >= VAD_THRESHOLD)).sum()),
                        "miss_adapt": int((ref & (probs < adapt)).sum()),
                        "fa_adapt": int((~ref & (probs >= adapt)).sum()),
                        "adapt_threshold": round(adapt, 3),
                    }
                frames = 10 * np.log10(frame_energies(audio) + 1e-10)
                record["level_db"] = {
                    "p95": float(np.percentile(frames, 95)),
                    "p50": float(np.percentile(frames, 50)),
                    "max": float(frames.max()),
                }
                decodes = []
                for temperature in (0.0, *FALLBACK_TEMPERATURES):
                    if args.mode == "aligned":  # the fast decode, its words aligned after
                        out = asr._decode(audio, False, None, None, temperature, align=True)
                    else:
                        out = asr.transcribe(audio, words=words, temperature=temperature)
                    d = {"t": temperature, "text": out.text, "seconds": round(out.seconds, 3)}
                    if words or args.mode == "aligned":
                        d["words"] = word_rows(out, audio)
                    decodes.append(d)
                    if compression_ratio(out.text) <= MAX_COMPRESSION_RATIO:
                        break
                record["decodes"] = decodes
                sink.write(json.dumps(record) + "\n")
                sink.flush()
                if k % 50 == 0:
                    print(f"  {label} {k}/{len(todo)}", file=sys.stderr, flush=True)
    return 0


# ---------------------------------------------------------------- offline variants


def hyp_of(
    record: dict,
    guard: bool,
    min_prob: float = 0.0,
    min_rel_db: float | None = None,
    level: str = "p95",
) -> str:
    """The transcript a variant would give: the first decode or the loop guard's last one, with
    words below the probability cut or quieter than ``min_rel_db`` under the utterance level
    dropped."""
    d = record["decodes"][-1 if guard else 0]
    if "words" not in d:
        return d["text"]
    ref_level = record["level_db"][level]
    kept = [
        w
        for w, p, _s, _e, db in d["words"]
        if p >= min_prob and (min_rel_db is None or db - ref_level >= min_rel_db)
    ]
    return " ".join(kept)


def wer(records, **variant) -> tuple[float, int, int]:
    from duetto.data.textnorm import normalize_text, word_errors

    errors = words = 0
    for r in records:
        e, n = word_errors(normalize_text(r["ref"]), normalize_text(hyp_of(r, **variant)))
        errors, words = errors + e, words + n
    return (errors / words if words else float("nan")), errors, words


def by_condition(cache: dict, ids: set[str] | None = None) -> dict[str, list[dict]]:
    out: dict[str, list[dict]] = {}
    for (uid, cond), r in cache.items():
        if ids is None or uid in ids:
            out.setdefault(cond, []).append(r)
    return out


PROBS = (0.0, 0.1, 0.15, 0.2, 0.25, 0.3, 0.4)
REL_DBS = (None, -30.0, -25.0, -20.0, -17.5, -15.0, -12.5, -10.0, -7.5)
CLEAN_BUDGET = 0.02


def tune(train: dict[str, list[dict]], tune_on: tuple[str, ...]) -> tuple[dict, str]:
    """The (probability, relative level) cut with the lowest summed WER over ``tune_on`` on
    *train* mixtures whose clean WER stays within 2% of the unfiltered word-mode decode."""
    clean0 = wer(train["clean"], guard=True)[0]
    lines = [f"{'prob':>5} {'rel dB':>7} {'clean':>7} " + " ".join(f"{c:>10}" for c in tune_on)]
    best, best_score = {"min_prob": 0.0, "min_rel_db": None}, None
    for p in PROBS:
        for db in REL_DBS:
            v = {"guard": True, "min_prob": p, "min_rel_db": db}
            c = wer(train["clean"], **v)[0]
            ws = [wer(train[name], **v)[0] for name in tune_on]
            lines.append(f"{p:>5g} {str(db):>7} {c:>7.1%} " + " ".join(f"{w:>10.1%}" for w in ws))
            if c <= clean0 * (1 + CLEAN_BUDGET) and (best_score is None or sum(ws) < best_score):
                best, best_score = {"min_prob": p, "min_rel_db": db}, sum(ws)
    return best, "\n".join(lines)


def _plot(report: dict, names: list[str], conds: list[str], n: int, png: str) -> None:
    from duetto.data.evaluate import Summary, plot_wer_vs_snr

    def label(c: str) -> str:
        return c if c == "clean" else f"{c} dB"

    curves = {
        name: [Summary(label(c), "all", n, report[name][c]["wer"], 0, 0, 0) for c in conds]
        for name in names
    }
    plot_wer_vs_snr(curves, png, title=f"WER, speechocean762 dev, {n} utterances")
    print(f"wrote {png}")


def _grid(cache: dict, cut: dict | None, png: str) -> None:
    """Every condition of one cache (the utterances all of them hold): the unfiltered words and
    the tuned cut, printed and drawn."""
    conds = [c for c in CONDITION_ORDER if c in cache]
    common = set.intersection(*({r["id"] for r in cache[c]} for c in conds))
    report: dict = {}
    names = {"baseline (no filter)": {"guard": False}}
    if cut:
        names[f"p>={cut['min_prob']:g}, level>={cut['min_rel_db']}"] = {"guard": True, **cut}
    print(f"\n{'grid':<30}" + "".join(f"{c:>11}" for c in conds))
    for name, v in names.items():
        report[name] = {c: {"wer": wer([r for r in cache[c] if r["id"] in common], **v)[0]}
                        for c in conds}  # fmt: skip
        print(f"{name:<30}" + "".join(f"{report[name][c]['wer']:>11.1%}" for c in conds))
    _plot(report, list(names), conds, len(common), png)


CONDITION_ORDER = ("clean", "babble 20", "babble 10", "babble 5", "babble 0", "white 20",
                   "white 10", "white 5", "white 0")  # fmt: skip


def _cache_of(split: str, mode: str, seed: int) -> Path:
    """``fast``, ``aligned``, ``words``; with a front end ``fast-rnnoise``, with another model
    ``aligned@bundled-base``."""
    mode, _, model = mode.partition("@")
    base, _, front = mode.partition("-")
    return cache_file(split, base, seed, model=model or "bundled", denoise=front or "none")


def score(args) -> int:
    modes = [m for m in args.modes.split(",") if m]
    caches = {m: by_condition(read_cache(_cache_of("dev", m, args.seed))) for m in modes}
    report: dict = {}
    tuned = {}
    for mode in modes[1:]:
        if mode.startswith("fast"):
            continue
        train = by_condition(read_cache(_cache_of("train", mode, args.seed)))
        if train.get("clean"):
            best, sweep = tune(train, tuple(c for c in ("babble 5", "babble 0") if c in train))
            n_train = len(train["clean"])
            print(f"{mode}: word filters tuned on {n_train} train utterances (guard on):\n{sweep}")
            print(f"chosen: {best}\n")
            tuned[mode] = best
    report["tuned"] = tuned
    variants = {
        "baseline (engine default)": ("fast", {"guard": False}),
        "fast + loop guard": ("fast", {"guard": True}),
    }
    for mode in modes[1:]:
        if mode.startswith("fast"):  # a front end before the engine's default decoding
            variants[mode] = (mode, {"guard": False})
            continue
        variants[f"{mode} + guard"] = (mode, {"guard": True})
        variants[f"{mode}: word prob 0.2 + guard"] = (mode, {"guard": True, "min_prob": 0.2})
        # Another model's cache has no train sweep of its own: it gets the first mode's cut.
        t = tuned.get(mode) or next(iter(tuned.values()), None)
        if t:
            variants[f"{mode}: tuned p>={t['min_prob']:g}, level>={t['min_rel_db']} + guard"] = (
                mode,
                {"guard": True, **t},
            )
    fast_c = caches["fast"]
    # Score each condition on the utterances every chosen cache holds: rows compare like with like.
    conds = [c for c in fast_c if all(c in caches[m] for m in modes)]
    ids = {c: set.intersection(*({r["id"] for r in caches[m][c]} for m in modes)) for c in conds}
    if args.same:  # the same utterances in every condition too: ratios compare like with like
        common = set.intersection(*ids.values())
        ids = {c: common for c in conds}
    print(f"{'variant':<50}" + "".join(f"{c:>11}" for c in conds) + "   b5/clean")
    for name, (mode, v) in variants.items():
        row = f"{name:<50}"
        report[name] = {}
        for c in conds:
            rs = [r for r in caches[mode][c] if r["id"] in ids[c]]
            w, e, n = wer(rs, **v)
            report[name][c] = {"wer": w, "errors": e, "words": n, "utterances": len(rs)}
            row += f"{w:>11.1%}"
        if "clean" in conds and "babble 5" in conds:
            row += f"   {report[name]['babble 5']['wer'] / report[name]['clean']['wer']:.2f}x"
        print(row)
    print("utterances".ljust(50) + "".join(f"{len(ids[c]):>11}" for c in conds))
    if args.png:
        _plot(report, [v for v in variants if v.startswith(("baseline", f"{modes[-1]}: tuned"))],
              conds, len(ids[conds[0]]), args.png)  # fmt: skip
    if args.grid_png:
        _grid(caches[modes[-1]], tuned.get(modes[-1]), args.grid_png)
    print("\nVAD: miss / false alarm at 0.5, and adapted (all utterances each cache holds)")
    vad_rows = [(m, c, rs) for m, cache in caches.items() if m.startswith("fast")
                for c, rs in cache.items()]  # fmt: skip
    for mode, c, rs in vad_rows:
        v = [r["vad"] for r in rs]
        s, q = sum(x["speech"] for x in v), sum(x["silence"] for x in v)
        miss, fa = sum(x["miss"] for x in v) / s, sum(x["fa"] for x in v) / max(q, 1)
        ma, fa2 = sum(x["miss_adapt"] for x in v) / s, sum(x["fa_adapt"] for x in v) / max(q, 1)
        print(
            f"{mode:<13} {c:<12} n={len(v):>3}  miss {miss:6.1%}  FA {fa:6.1%}  |  adapted miss {ma:6.1%}"
            f"  FA {fa2:6.1%}"
        )
        report.setdefault("vad", {})[f"{mode} {c}"] = {
            "miss": miss,
            "fa": fa,
            "miss_adapt": ma,
            "fa_adapt": fa2,
            "utterances": len(v),
        }
    print("\nRTF of the first decode (1 thread, shared machine):")
    for mode, cache in caches.items():
        for c, rs in cache.items():
            secs = sum(r["decodes"][0]["seconds"] for r in rs)
            allsecs = sum(sum(d["seconds"] for d in r["decodes"]) for r in rs)
            dur = sum(r["duration"] for r in rs)
            redo = sum(len(r["decodes"]) > 1 for r in rs)
            print(
                f"  {mode:<6} {c:<12} RTF {secs / dur:.3f} (with guard {allsecs / dur:.3f}), "
                f"{redo} re-decoded"
            )
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=1, default=str))
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="cmd", required=True)
    d = sub.add_parser("decode")
    d.add_argument("--split", default="dev")
    d.add_argument("--limit", type=int, default=0, help="0 = all, else spread over speakers")
    d.add_argument("--mode", choices=("fast", "aligned", "words"), default="fast")
    d.add_argument("--model", default="bundled")
    d.add_argument("--threads", type=int, default=1)
    d.add_argument("--compute-type", default="int8", help="CTranslate2's: int8 (engine), float32")
    d.add_argument("--denoise", default="none", help="front end: none, noisereduce, rnnoise")
    d.add_argument("--conditions", default="clean;babble 5;white 5")
    d.add_argument("--seed", type=int, default=0)
    s = sub.add_parser("score")
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--json", help="write the figures here")
    s.add_argument("--modes", default="fast,aligned", help="caches to compare (fast first)")
    s.add_argument("--same", action="store_true", help="the same utterances in every condition")
    s.add_argument("--png", help="draw the baseline and the tuned filter here")
    s.add_argument("--grid-png", help="every SNR of the last mode's cache, drawn here")
    args = parser.parse_args()
    return decode(args) if args.cmd == "decode" else score(args)


if __name__ == "__main__":
    sys.exit(main())
