"""Bank NLU quality and speed: BANKING77 test accuracy, NLU++ 4-fold CV F1s, latency, spoken queries.

    nice -n 5 .venv/bin/python bench/bank_nlu.py                    # accuracy, CV F1s, latency
    nice -n 5 .venv/bin/python bench/bank_nlu.py --spoken 10        # + transcripts of bench/bank_spoken.py
    nice -n 5 .venv/bin/python bench/bank_nlu.py --baseline ~/.cache/duetto/bank-nlu/nlu-frozen-heads.npz
    nice -n 5 .venv/bin/python bench/bank_nlu.py --nlupp-grid       # choose the NLU++ heads' C

Uses the shipped model (src/duetto/apps/bank/data/: fine-tuned MiniLM, int8 ONNX, and nlu.npz,
made from train data only by bench/bank_finetune.py). BANKING77 test.csv is read here and nowhere
else. ``--baseline`` also scores the previous design side by side: the frozen bundled MiniLM on
torch with linear heads (the ``nlu.npz`` of commit 3cf709b: ``git show
3cf709b:src/duetto/apps/bank/data/nlu.npz > FILE``).
Targets (issue 8): BANKING77 test >= 94.5%; spoken >= 91% clean, >= 88% babble at 5 dB;
intent + slots < 30 ms per utterance.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "bench"))

from bank_finetune import model_key  # noqa: E402
from bank_spoken import cache_path, read_transcripts  # noqa: E402
from duetto.apps.bank.heads import LinearHead  # noqa: E402
from duetto.apps.bank.nlu import DATA_DIR, MODEL_FILE, BankNLU  # noqa: E402
from duetto.apps.bank.training import (  # noqa: E402
    ACT_C,
    DEFAULT_CACHE,
    SLOT_C,
    encode_cached,
    load_banking77,
    load_nlupp,
    nlupp_cross_validation,
    predict_slots,
)

DATA = ROOT.parent / "shared" / "data"
# Utterances timed for latency: enough for a stable median and 95th percentile.
LATENCY_SAMPLES = 200


class Baseline:
    """The previous design: frozen MiniLM on torch, linear heads for intents, acts and slots."""

    def __init__(self, heads: Path):
        from duetto.apps.bank.encoder import SentenceEncoder

        arrays = np.load(heads, allow_pickle=False)
        self.intents = LinearHead.from_arrays(arrays, "b77")
        self.acts = LinearHead.from_arrays(arrays, "acts")
        self.slots = LinearHead.from_arrays(arrays, "slots")
        self.encoder = SentenceEncoder()

    def classify(self, texts: list[str], cache: Path | None = None, name: str = "") -> list[str]:
        enc = (
            encode_cached(self.encoder, texts, cache, name) if cache else self.encoder.encode(texts)
        )
        x = np.stack([e.sentence for e in enc])
        return list(np.array(self.intents.labels)[self.intents.logits(x).argmax(1)])

    def understand_ms(self, text: str) -> float:
        start = time.perf_counter()
        enc = self.encoder.encode([text])[0]
        self.intents.softmax(enc.sentence)
        self.acts.sigmoid(enc.sentence)
        predict_slots(self.slots, enc)
        return (time.perf_counter() - start) * 1000


def classify(nlu: BankNLU, texts: list[str]) -> list[str]:
    # One at a time, as at run time: int8 activations are quantized per batch, so padding in a
    # batch would shift the scores a little.
    enc = nlu.encoder.encode([t or " " for t in texts], batch_size=1)
    return [nlu.intent_labels[int(nlu.intent_probs(e).argmax())] for e in enc]


def accuracy(pred: list[str], gold: list[str]) -> float:
    return float(np.mean([p == g for p, g in zip(pred, gold, strict=True)]))


def nlupp_cv(encoder, cache: Path, name: str, grid: bool) -> dict:
    examples = load_nlupp(DATA)
    enc = encode_cached(encoder, [e.text for e in examples], cache, name)
    labels = sorted({i for e in examples for i in e.intents})
    settings = [(ACT_C, SLOT_C)]
    if grid:
        settings = [(a, s) for a in (0.02, 0.05, 0.1, 0.3) for s in (0.03, 0.1, 0.3)]
    rows = []
    for act_c, slot_c in settings:
        scores = nlupp_cross_validation(enc, examples, labels, act_c, slot_c)
        rows.append({"act_C": act_c, "slot_C": slot_c, "intent_f1": scores.intent_f1, "slot_f1": scores.slot_f1,
                     "per_block": scores.per_block})  # fmt: skip
        if grid:
            print(
                f"  act C={act_c:<5} slot C={slot_c:<5} intent F1 {scores.intent_f1:.4f}  slot F1 {scores.slot_f1:.4f}",
                flush=True,
            )
    return rows[0] if not grid else max(rows, key=lambda r: r["intent_f1"] + r["slot_f1"])


def latency(understand_ms) -> dict:
    texts, _ = load_banking77(DATA, "test")
    sample = random.Random(0).sample(texts, LATENCY_SAMPLES)
    understand_ms("warm up")
    times = [understand_ms(t) for t in sample]
    return {"median_ms": statistics.median(times), "p95_ms": float(np.percentile(times, 95)),
            "min_ms": min(times)}  # fmt: skip


def spoken(classify_fn, per_intent: int, cache: Path, tag: str = "") -> dict:
    """Accuracy on the transcripts of spoken test queries (bench/bank_spoken.py), per condition."""
    rows = read_transcripts(cache_path(cache, "test", per_intent, tag))
    if not rows:
        raise SystemExit(
            f"no transcripts: run bench/bank_spoken.py --split test --per-intent {per_intent}"
        )
    gold = [r["label"] for r in rows]
    out = {"n": len(rows), "written": accuracy(classify_fn([r["text"] for r in rows]), gold)}
    for cond in ("clean", "babble"):
        pred = classify_fn([r[cond] for r in rows])
        out[cond] = accuracy(pred, gold)
        for voice in sorted({r["voice"] for r in rows}):
            k = [i for i, r in enumerate(rows) if r["voice"] == voice]
            out.setdefault("per_voice", {}).setdefault(voice, {})[cond] = accuracy(
                [pred[i] for i in k], [gold[i] for i in k]
            )
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--cache", type=Path, default=DEFAULT_CACHE)
    p.add_argument("--spoken", type=int, default=0, metavar="PER_INTENT",
                   help="score the spoken test transcripts of bench/bank_spoken.py --per-intent N")  # fmt: skip
    p.add_argument("--asr-tag", default="",
                   help="ASR setting of the transcripts (bench/bank_spoken.py cache tag: prompt, "
                        "bundled-base, bundled-base-prompt); default: tiny.en without a prompt")  # fmt: skip
    p.add_argument(
        "--baseline", type=Path, help="heads .npz of the frozen-encoder design, scored too"
    )
    p.add_argument(
        "--nlupp-grid", action="store_true", help="cross-validate a grid of NLU++ head settings"
    )
    p.add_argument("--json", action="store_true")
    args = p.parse_args(argv)

    t = time.perf_counter()
    nlu = BankNLU()
    systems = {"fine-tuned int8 ONNX (shipped)": nlu}
    out: dict = {"load_s": time.perf_counter() - t, "systems": {}}
    if args.baseline:
        systems["frozen MiniLM + linear heads (before)"] = Baseline(args.baseline)
    texts, labels = load_banking77(DATA, "test")
    key = model_key(DATA_DIR / MODEL_FILE)
    for name, system in systems.items():
        print(f"scoring {name} ...", flush=True)
        row: dict = {}
        if isinstance(system, Baseline):
            row["banking77_test_accuracy"] = accuracy(
                system.classify(texts, args.cache, "banking77-test"), labels
            )
            row["nlupp_cv"] = nlupp_cv(system.encoder, args.cache, "nlupp", args.nlupp_grid)
            row["latency"] = latency(system.understand_ms)
            fn = system.classify
        else:
            row["banking77_test_accuracy"] = accuracy(classify(nlu, texts), labels)
            row["nlupp_cv"] = nlupp_cv(nlu.encoder, args.cache, f"nlupp-{key}", args.nlupp_grid)
            row["latency"] = latency(lambda text: nlu.understand(text).ms)
            fn = lambda batch: classify(nlu, batch)  # noqa: E731
        if args.spoken:
            row["spoken"] = spoken(fn, args.spoken, args.cache, args.asr_tag)
        out["systems"][name] = row
    if args.json:
        print(json.dumps(out, indent=2))
        return 0
    print_table(out["systems"])
    return 0


def print_table(systems: dict) -> None:
    names = list(systems)
    rows = [("BANKING77 test accuracy (>= 94.5%)", lambda r: f"{r['banking77_test_accuracy']:.2%}")]
    rows += [
        ("NLU++ 4-fold CV intent micro-F1", lambda r: f"{r['nlupp_cv']['intent_f1']:.4f}"),
        ("NLU++ 4-fold CV slot micro-F1", lambda r: f"{r['nlupp_cv']['slot_f1']:.4f}"),
        ("intent+acts+slots median ms (< 30)", lambda r: f"{r['latency']['median_ms']:.1f}"),
        (
            "  p95 / min ms",
            lambda r: f"{r['latency']['p95_ms']:.1f} / {r['latency']['min_ms']:.1f}",
        ),
    ]
    first = systems[names[0]]
    if "spoken" in first:
        rows += [
            (
                f"spoken test queries, n={first['spoken']['n']}: as written",
                lambda r: f"{r['spoken']['written']:.2%}",
            ),
            ("  spoken, clean ASR (>= 91%)", lambda r: f"{r['spoken']['clean']:.2%}"),
            ("  spoken, babble 5 dB ASR (>= 88%)", lambda r: f"{r['spoken']['babble']:.2%}"),
        ]
        for voice in first["spoken"]["per_voice"]:
            rows.append((f"    {voice} clean / babble",
                         lambda r, v=voice: f"{r['spoken']['per_voice'][v]['clean']:.1%} / {r['spoken']['per_voice'][v]['babble']:.1%}"))  # fmt: skip
    width = max(len(r[0]) for r in rows) + 2
    print("| what".ljust(width + 2) + " | " + " | ".join(names) + " |")
    print("| " + "-" * width + " | " + " | ".join("---" for _ in names) + " |")
    for label, fmt in rows:
        print("| " + label.ljust(width) + " | " + " | ".join(fmt(systems[n]) for n in names) + " |")
    for n in names:
        for k, (fi, fs) in enumerate(systems[n]["nlupp_cv"]["per_block"]):
            print(
                f"  {n}: NLU++ block {k} (folds {k},{k + 4},{k + 8},{k + 12} held out) intent F1 {fi:.4f}, slot F1 {fs:.4f}"
            )


if __name__ == "__main__":
    sys.exit(main())
