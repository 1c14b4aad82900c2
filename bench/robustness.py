"""ASR and VAD robustness to babble and white noise on speechocean762/dev, and what each
switchable improvement does (noise suppression front end, noise-floor-adapted VAD threshold,
beam search).

    nice -n 10 .venv/bin/python bench/robustness.py --limit 20 --out bench/out/robustness

The baseline runs every condition (clean, babble/white at 20/10/5/0 dB); each variant runs a
reduced grid (clean, 5 dB, 0 dB) to stay within a shared 2-core CPU. The VAD-threshold variant
runs no ASR (it cannot change the transcript in this offline evaluation, which decodes the whole
utterance). Results: a table on stdout, ``results.json``, and ``wer_vs_snr.png``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "speechocean762"


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--limit", type=int, default=20, help="utterances of dev, spread over speakers"
    )
    parser.add_argument("--out", default=str(ROOT / "bench" / "out" / "robustness"))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--variants", default="denoise,adaptive-vad,beam5", help="comma list or 'none'"
    )
    args = parser.parse_args()

    from duetto.data.evaluate import (
        EvalConfig,
        Evaluator,
        format_table,
        parse_conditions,
        plot_wer_vs_snr,
        summarize,
    )
    from duetto.data.manifest import read_manifest, subset

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    utts = subset(read_manifest(DATA / "dev.jsonl"), args.limit)
    babble = DATA / "train.jsonl"
    full = parse_conditions("clean,20,10,5,0", "babble,white")
    reduced = parse_conditions("clean,5,0", "babble,white")
    runs = [("baseline", EvalConfig(), full, True)]
    variants = {
        "denoise": ("noisereduce", EvalConfig(denoise="noisereduce"), reduced, True),
        "adaptive-vad": ("adaptive VAD", EvalConfig(adaptive_vad=True), reduced, False),
        "beam5": ("beam 5", EvalConfig(beam_size=5), reduced, True),
    }
    for name in args.variants.split(","):
        if name in variants:
            runs.append(variants[name])
    report = {"utterances": len(utts), "speakers": len({u.speaker for u in utts}), "runs": {}}
    curves = {}
    for label, config, conditions, with_asr in runs:
        evaluator = Evaluator(config, babble_manifest=babble, seed=args.seed, run_asr=with_asr)
        results, problems = evaluator.run(utts, conditions)
        summaries = summarize(results)
        print(
            f"\n== {label} ({config.label}), {len(utts)} utterances"
            + ("" if with_asr else ", VAD only")
        )
        print(format_table(summaries))
        report["runs"][label] = {
            "config": config.label,
            "asr": with_asr,
            "summary": [s.to_dict() for s in summaries],
            "problems": [str(p) for p in problems],
            "results": [r.to_dict() for r in results],
        }
        if with_asr:
            curves[label] = summaries
        (out / "results.json").write_text(json.dumps(report, indent=1))
    plot_wer_vs_snr(
        curves, out / "wer_vs_snr.png", title=f"WER vs SNR, speechocean762 dev ({len(utts)} utts)"
    )
    print(f"\nwrote {out / 'results.json'} and {out / 'wer_vs_snr.png'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
