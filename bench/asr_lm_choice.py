"""Choosing among noisy decodings with a language model (issue 6, a measurement).

    .venv/bin/python bench/asr_lm_choice.py decode    # after bench/word_filter.py prepare --set held
    .venv/bin/python bench/asr_lm_choice.py score

``decode`` decodes the word filter's held set (100 utterances, babble 5 dB) with the noisy-room
settings (``bundled-robust``, the learned word filter at 0.5, beam 5 under 20 dB) at the five
speeds of ``asr.noisy_speeds``, keeping each speed's filtered transcript and the beam's other
four best hypotheses, into a resumable cache. ``score`` gives every candidate Gemma's
log-probability and prints the held WER of each cell of the grid in docs/robustness.md
(λ × β × pool), the medoid (λ = β = 0) first, and the cell the rule picks. ``engine`` runs the
engine's own ``asr.noisy_lm`` on the same clips and compares its transcripts with that pick.
"""

from __future__ import annotations

import argparse
import json
import pickle
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "bench"))

import word_filter as W  # noqa: E402

SPEEDS = (1.0, 0.95, 1.05, 0.9, 1.1)
NBEST = 5
LAMBDAS = (0.0, 0.1, 0.25, 0.5, 1.0, 2.0)
BETAS = (0.0, 0.5, 1.0, 2.0)
CACHE = W.CACHE / "lm-choice-held.pkl"


def held_rows() -> list[dict]:
    index = [json.loads(line) for line in (W.CACHE / "held-index.jsonl").read_text().splitlines()]
    return [r for r in index if r["condition"] == "babble 5"]


def decode(threads: int) -> int:
    from duetto.asr.whisper import WhisperASR
    from duetto.config import ASRSettings
    from duetto.data.augment import speed_perturb

    asr = WhisperASR(ASRSettings(model="bundled-robust", word_filter="learned",
                                 word_filter_threshold=0.5, filter_below_snr_db=20.0,
                                 noisy_beam_size=5, threads=threads))  # fmt: skip
    done = pickle.loads(CACHE.read_bytes()) if CACHE.exists() else {}
    rows = held_rows()
    for n, r in enumerate(rows):
        if r["id"] in done:
            continue
        audio = np.load(W.CACHE / "audio" / "held" / f"{r['id']}-babble5.npy").astype(np.float32)
        per_speed = []
        for s in SPEEDS:
            clip = audio if s == 1.0 else speed_perturb(audio, s)
            out = asr.transcribe(clip, nbest=NBEST)
            per_speed.append((out.text, [text for text, _ in out.alternatives[1:]]))
        done[r["id"]] = per_speed
        if n % 10 == 9 or n == len(rows) - 1:
            CACHE.write_bytes(pickle.dumps(done))
            print(f"  {n + 1}/{len(rows)}", flush=True)
    return 0


def choose(cands: list[str], decodings: list[str], lp: dict, lam: float, beta: float) -> int:
    from duetto.asr.whisper import lm_pick

    return lm_pick(cands, decodings, [lp[c] for c in cands], lam, beta)


def engine(threads: int) -> int:
    """The engine's own choice (asr.noisy_lm at its default weights) on the held clips: its WER,
    and how often its transcript is the one ``score``'s pick of the same cell gives."""
    from duetto.asr.whisper import WhisperASR
    from duetto.config import ASRSettings
    from duetto.data.textnorm import normalize_text, word_errors
    from duetto.llm.scoring import GemmaScorer

    settings = ASRSettings(model="bundled-robust", word_filter="learned",
                           word_filter_threshold=0.5, filter_below_snr_db=20.0,
                           noisy_beam_size=5, noisy_speeds=SPEEDS[1:], noisy_lm="bundled",
                           threads=threads)  # fmt: skip
    asr = WhisperASR(settings)
    done = pickle.loads(CACHE.read_bytes())
    rows = held_rows()
    scorer = GemmaScorer()
    counts, same, seconds = [], 0, []
    for r in rows:
        audio = np.load(W.CACHE / "audio" / "held" / f"{r['id']}-babble5.npy").astype(np.float32)
        out = asr.transcribe(audio)
        seconds.append(out.seconds / out.duration)
        speeds = done[r["id"]]
        a = [best for best, _ in speeds]
        cands = a + [t for _, alts in speeds for t in alts if t not in a]
        lp = dict(zip(cands, scorer.sentence_logprobs(cands), strict=True))
        pick = cands[choose(cands, a, lp, settings.noisy_lm_weight, settings.noisy_lm_word_bonus)]
        same += out.text == pick
        counts.append(word_errors(normalize_text(r["ref"]), normalize_text(out.text)))
    counts = np.array(counts)
    print(f"engine (asr.noisy_lm): held babble 5 dB {100 * counts[:, 0].sum() / counts[:, 1].sum():.1f}%, "
          f"{same}/{len(rows)} transcripts as score's pick, median RTF {np.median(seconds):.3f}")  # fmt: skip
    return 0


def score() -> int:
    from duetto.data.textnorm import normalize_text, word_errors
    from duetto.llm.scoring import GemmaScorer

    done = pickle.loads(CACHE.read_bytes())
    rows = [r for r in held_rows() if r["id"] in done]
    print(f"held set, babble 5 dB: {len(rows)} utterances decoded")
    scorer = GemmaScorer()
    texts = {t for r in rows for best, alts in done[r["id"]] for t in (best, *alts)}
    texts = sorted(texts)
    lp = dict(zip(texts, scorer.sentence_logprobs(texts), strict=True))
    refs = [normalize_text(r["ref"]) for r in rows]

    def wer(picks: list[str]) -> float:
        counts = np.array(
            [word_errors(ref, normalize_text(p)) for ref, p in zip(refs, picks, strict=True)]
        )
        return 100 * counts[:, 0].sum() / counts[:, 1].sum()

    pools = {}
    for r in rows:
        speeds = done[r["id"]]
        a = [best for best, _ in speeds]
        b = a + [t for _, alts in speeds for t in alts if t not in a]
        pools.setdefault("A", []).append((a, a))
        pools.setdefault("B", []).append((b, a))
    print(f"speed 1.0 alone {wer([p[0][0] for p in pools['A']]):.1f}")
    for name, pool in pools.items():
        oracle = [min(c, key=lambda t, ref=ref: word_errors(ref, normalize_text(t))[0])
                  for (c, _), ref in zip(pool, refs, strict=True)]  # fmt: skip
        print(f"pool {name}: {np.mean([len(c) for c, _ in pool]):.1f} candidates, "
              f"oracle {wer(oracle):.1f}")  # fmt: skip
    grid = {}
    for name in ("A", "B"):
        print(f"pool {name}: rows λ, columns β {BETAS}")
        for lam in LAMBDAS:
            line = []
            for beta in BETAS:
                picks = [c[choose(c, d, lp, lam, beta)] for c, d in pools[name]]
                grid[lam, beta, name] = wer(picks)
                line.append(f"{grid[lam, beta, name]:6.1f}")
            print(f"  λ {lam:<5}" + "".join(line), flush=True)
    best = min(grid, key=lambda k: (grid[k], k[0], k[1], k[2]))
    print(f"medoid (λ 0, β 0, pool A) {grid[0.0, 0.0, 'A']:.1f}; the rule's cell: "
          f"λ {best[0]}, β {best[1]}, pool {best[2]}: {grid[best]:.1f}")  # fmt: skip
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("step", choices=("decode", "score", "engine"))
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    if args.step == "engine":
        return engine(args.threads)
    return decode(args.threads) if args.step == "decode" else score()


if __name__ == "__main__":
    sys.exit(main())
