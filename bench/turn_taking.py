"""End-of-turn detection on speechocean762 dev: false cut-offs against waiting after real ends.

Every Silero VAD pause of 100 ms or more in a dev utterance is one decision. A method answers
with a wait (silence from the pause's start after which the agent takes the turn, 3 s at most):
a pause inside the utterance that lasts longer than its wait is a *false cut-off*, and the wait
at the utterance's real end is the *delay*. For each method a family of decision rules is swept
and the lower envelope kept; the headline numbers are the share of turns cut off at least once
at a mean delay of 300 and 600 ms, and the mean delay needed for at most 5% cut-offs.

Methods: VAD only (one silence threshold), our models (text only, audio only, gated fusion,
cross-attention, late fusion of the audio and text nets; all through duetto.fusion.eot on onnxruntime, exactly as at run time) and,
when the pipecat-ai wheel is found, Pipecat's Smart Turn v3.2 on the same pauses.

    .venv/bin/python bench/eot_data.py --split dev        # VAD + ASR cache (once)
    .venv/bin/python bench/turn_taking.py --plot docs/turn-taking.png [--json]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

import eot_data  # noqa: E402
from duetto.audio import load_audio  # noqa: E402
from duetto.fusion import eot  # noqa: E402
from duetto.fusion.features import frame_features  # noqa: E402

MAX_WAIT = eot.MAX_WAIT_S
WAITS = np.round(np.arange(eot.DECISION_DELAY_S, MAX_WAIT + 1e-9, 0.02), 3)
TARGET = 0.05
# "Answer at once if p >= theta, else after FALLBACK of silence" (Smart Turn's own rule in
# Pipecat); theta above 1 never answers early, so every model can fall back to VAD only.
THETAS = [*np.linspace(0.05, 0.95, 19), 0.97, 0.99, 0.995, 0.999, 1.01]
FALLBACKS = np.round(np.arange(0.2, MAX_WAIT + 1e-9, 0.04), 3)
BUDGETS_MS = (300, 600)
SHIPPED = "fused (late)"  # the engine's default, drawn bold
# Where pip put the bench-only pipecat-ai wheel (pip install --no-deps --target DIR pipecat-ai).
PIPECAT_DIRS = [
    os.environ.get("PIPECAT_DIR", ""),
    str(Path.home() / ".cache" / "duetto" / "pipecat"),
]


# ---------------------------------------------------------------- scoring


def outcome(
    utts: np.ndarray, labels: np.ndarray, durations: np.ndarray, waits: np.ndarray
) -> tuple[float, float]:
    """(share of utterances cut off at least once, mean wait in seconds at real ends)."""
    cut = (labels == 0) & (durations > waits)
    cut_utts = set(utts[cut])
    all_utts = set(utts)
    return len(cut_utts) / len(all_utts), float(waits[labels == 1].mean())


def sweep(d: dict, probs: np.ndarray | None, survival: dict) -> np.ndarray:
    """(mean wait, cut-off share) of every rule tried: for VAD only one threshold per wait;
    for a model the cost-weighted rule of duetto.fusion.eot for many weights, and the simple
    "answer at once if p >= theta, else wait F" rule for a grid of theta and F."""
    points = []
    if probs is None:
        for w in WAITS:
            waits = np.full(len(d["labels"]), w)
            cut, wait = outcome(d["utts"], d["labels"], d["durations"], waits)
            points.append((wait, cut))
        return np.array(points)
    for lam in np.geomspace(0.01, 1000, 80):
        waits = np.array([eot.wait_for(p, survival, lam) for p in probs])
        cut, wait = outcome(d["utts"], d["labels"], d["durations"], waits)
        points.append((wait, cut))
    for theta in THETAS:
        for fallback in FALLBACKS:
            waits = np.where(probs >= theta, eot.DECISION_DELAY_S, fallback)
            cut, wait = outcome(d["utts"], d["labels"], d["durations"], waits)
            points.append((wait, cut))
    return np.array(points)


def envelope(points: np.ndarray) -> np.ndarray:
    """Lowest cut-off share reachable at each mean wait (a step curve over WAITS)."""
    return np.array([points[points[:, 0] <= w + 1e-9, 1].min(initial=1.0) for w in WAITS])


def headline(points: np.ndarray) -> dict:
    env = envelope(points)
    out = {
        f"cutoff_at_{b}ms": float(env[np.searchsorted(WAITS, b / 1000 - 1e-9)]) for b in BUDGETS_MS
    }
    ok = points[points[:, 1] <= TARGET]
    out["wait_ms_at_5pct"] = float(ok[:, 0].min() * 1000) if len(ok) else None
    return out


# ---------------------------------------------------------------- data


def load_dev(limit: int | None) -> dict:
    records = eot_data.load_cached("dev")[: limit or None]
    items = []
    for record in records:
        audio = load_audio(eot_data.DATA / record["audio"])
        for dec in eot_data.decisions(record):
            clip = eot_data.audio_until(record, dec.pause.start + eot_data.DECISION_DELAY_S, audio)
            items.append((dec, clip))
    return {
        "items": items,
        "utts": np.array([d.utt for d, _ in items]),
        "labels": np.array([d.label for d, _ in items]),
        "durations": np.array([d.pause.duration for d, _ in items]),
        "n_utts": len(records),
    }


def model_probs(d: dict, variant: str) -> tuple[np.ndarray, list[float]]:
    """Probabilities through the run-time class, and the time of each full decision."""
    model = eot.EndOfTurnModel(variant)
    encoder = model.text_encoder() if model.uses_text else None
    probs, times = [], []
    for dec, clip in d["items"]:
        t0, c0 = time.perf_counter(), time.process_time()
        frames = frame_features(clip) if model.uses_audio else None
        tokens = sentence = None
        if encoder is not None:
            tokens, sentence = encoder._run(eot_data_normalize(dec.prefix))  # uncached: honest time
        probs.append(model.run_features(frames, tokens, sentence))
        times.append((time.perf_counter() - t0, time.process_time() - c0))
    return np.array(probs), times


def eot_data_normalize(text: str) -> str:
    from duetto.fusion.text import normalize

    return normalize(text)


def smart_turn_probs(d: dict) -> tuple[np.ndarray, list[float]] | None:
    """Pipecat Smart Turn v3.2 from the installed wheel (never copied into duetto)."""
    root = next((Path(p) for p in PIPECAT_DIRS if p and (Path(p) / "pipecat").is_dir()), None)
    if root is None:
        spec = importlib.util.find_spec("pipecat")
        root = Path(spec.origin).parents[1] if spec and spec.origin else None
    if root is None:
        return None
    base = root / "pipecat" / "audio" / "turn" / "smart_turn"
    spec = importlib.util.spec_from_file_location("_st_features", base / "_whisper_features.py")
    features = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(features)
    import onnxruntime

    opts = onnxruntime.SessionOptions()
    opts.intra_op_num_threads = 1
    opts.inter_op_num_threads = 1
    session = onnxruntime.InferenceSession(
        str(base / "data" / "smart-turn-v3.2-cpu.onnx"),
        sess_options=opts,
        providers=["CPUExecutionProvider"],
    )
    probs, times = [], []
    n = 8 * 16_000  # Smart Turn reads the last 8 s, zero-padded on the left
    for _, clip in d["items"]:
        t0, c0 = time.perf_counter(), time.process_time()
        x = clip[-n:]
        x = np.pad(x, (n - len(x), 0))
        mel = features.compute_whisper_log_mel_features(x, do_normalize=True)
        out = session.run(None, {"input_features": mel[None].astype(np.float32)})[0]
        probs.append(float(np.asarray(out).reshape(-1)[0]))
        times.append((time.perf_counter() - t0, time.process_time() - c0))
    return np.array(probs), times


def cached_smart_turn(d: dict, limit: int | None):
    """Smart Turn is slow (~50 ms a decision): its answers on dev are cached between runs."""
    path = eot_data.CACHE / f"smart-turn-dev-{limit or 'all'}.npz"
    if path.exists():
        z = np.load(path)
        if len(z["probs"]) == len(d["items"]):
            return z["probs"], [tuple(t) for t in z["times"]]
    st = smart_turn_probs(d)
    if st is not None:
        np.savez(path, probs=st[0], times=np.array(st[1]))
    return st


# ---------------------------------------------------------------- report


def main() -> None:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--plot", help="write the curve to this PNG")
    p.add_argument("--json", action="store_true")
    p.add_argument("--limit", type=int, help="only the first N dev utterances")
    p.add_argument("--no-smart-turn", action="store_true")
    args = p.parse_args()

    d = load_dev(args.limit)
    meta = eot._load_meta()
    survival = meta.get("survival") or eot.survival_table(np.zeros(0))
    methods: dict[str, dict] = {"VAD only": {"points": sweep(d, None, survival)}}
    for variant, label in (
        ("text", "text only"),
        ("audio", "audio only"),
        ("gated", "fused (gate)"),
        ("xattn", "fused (cross-attn)"),
        ("late", "fused (late)"),
    ):
        try:
            probs, times = model_probs(d, variant)
        except Exception as exc:  # a variant not trained yet
            print(f"skipping {variant}: {exc}", file=sys.stderr)
            continue
        lam = float(meta.get("models", {}).get(variant, {}).get("lambda", 1.0))
        waits = np.array([eot.wait_for(q, survival, lam) for q in probs])
        rule = outcome(d["utts"], d["labels"], d["durations"], waits)
        methods[label] = {
            "points": sweep(d, probs, survival),
            "times": times,
            "rule": rule,
            "probs": probs,
        }
    if not args.no_smart_turn:
        st = cached_smart_turn(d, args.limit)
        if st is not None:
            probs, times = st
            native = np.where(probs > 0.5, eot.DECISION_DELAY_S, MAX_WAIT)
            methods["Smart Turn v3.2"] = {
                "points": sweep(d, probs, survival),
                "times": times,
                "native": outcome(d["utts"], d["labels"], d["durations"], native),
                "probs": probs,
            }

    rows = []
    for name, m in methods.items():
        row = {"method": name, **headline(m["points"])}
        if "probs" in m:
            from sklearn.metrics import roc_auc_score

            row["auc"] = float(roc_auc_score(d["labels"], m["probs"]))
        if "times" in m:
            wall, cpu = np.array(m["times"]).T * 1000
            row["ms_median"], row["ms_p95"] = float(np.median(wall)), float(np.percentile(wall, 95))
            row["cpu_ms_median"] = float(np.median(cpu))
        if "rule" in m:
            row["rule_cutoff"], row["rule_wait_ms"] = m["rule"][0], m["rule"][1] * 1000
        if "native" in m:
            row["rule_cutoff"], row["rule_wait_ms"] = m["native"][0], m["native"][1] * 1000
        rows.append(row)

    summary = {
        "dev_utterances": d["n_utts"],
        "pauses": len(d["labels"]),
        "mid_turn_pauses": int((d["labels"] == 0).sum()),
        "rows": rows,
    }
    if args.json:
        print(json.dumps(summary, indent=2))
    else:
        print_table(summary)
    if args.plot:
        plot(methods, args.plot)
        print(f"curve: {args.plot}")


def _fmt(x, pct=False):
    if x is None:
        return "  >3000"
    return f"{x * 100:6.1f}%" if pct else f"{x:7.0f}"


def print_table(s: dict) -> None:
    print(
        f"speechocean762 dev: {s['dev_utterances']} utterances, {s['pauses']} VAD pauses >= 100 ms "
        f"({s['mid_turn_pauses']} inside turns)"
    )
    head = (
        "| method | cut-offs @300 ms | cut-offs @600 ms | wait for <=5% (ms) | AUC "
        "| shipped rule: cut-offs / wait ms | ms/decision wall (median, p95) | CPU ms (median) |"
    )
    print(head)
    print("|" + "---|" * 8)
    for r in s["rows"]:
        auc = f"{r['auc']:.3f}" if "auc" in r else "-"
        rule = (
            f"{r['rule_cutoff'] * 100:.1f}% / {r['rule_wait_ms']:.0f}"
            if "rule_cutoff" in r
            else "-"
        )
        ms = f"{r['ms_median']:.1f}, {r['ms_p95']:.1f}" if "ms_median" in r else "-"
        cpu = f"{r['cpu_ms_median']:.1f}" if "cpu_ms_median" in r else "-"
        print(
            f"| {r['method']} | {_fmt(r['cutoff_at_300ms'], True)} | {_fmt(r['cutoff_at_600ms'], True)} | "
            f"{_fmt(r['wait_ms_at_5pct'])} | {auc} | {rule} | {ms} | {cpu} |"
        )


def plot(methods: dict, path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7.5, 5))
    for name, m in methods.items():
        ax.step(
            WAITS * 1000,
            envelope(m["points"]) * 100,
            where="post",
            label=name,
            linewidth=2.4 if name == SHIPPED else 1.5,
        )
    ax.axhline(TARGET * 100, color="grey", linestyle=":", linewidth=1)
    ax.text(1480, TARGET * 100 + 0.6, "5%", color="grey", ha="right")
    ax.set_xlim(100, 1500)
    ax.set_ylim(0, 40)
    ax.set_xlabel("mean wait after the real end of the turn (ms)")
    ax.set_ylabel("turns cut off at least once (%)")
    ax.set_title("End-of-turn detection, speechocean762 dev (VAD pauses >= 100 ms)")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)


if __name__ == "__main__":
    main()
