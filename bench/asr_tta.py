"""Test-time speed perturbation with hypothesis combination (issue 6, a measurement).

    .venv/bin/python bench/asr_tta.py      # after bench/asr_finetune.py cache (held-out clips)
    .venv/bin/python bench/asr_tta.py --held   # after bench/word_filter.py prepare --set held

Decodes the held-out train speakers' clips (bench/asr_finetune.py's 40 utterances, clean and
babble 5 dB) with the noisy-room settings (``bundled-robust``, the learned word filter at 0.5,
beam 5 under 20 dB) at speeds 1.0, 0.95, 1.05, 0.9 and 1.1 (Kaldi-style: tempo and pitch), and
prints the WER of each speed alone and of two combinations of 3 and 5 of them: the medoid (the
hypothesis nearest the others in words) and a ROVER-style word vote (slots aligned one
hypothesis at a time; a tie keeps the speed-1.0 word).
"""

from __future__ import annotations

import collections
import pickle
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

SPEEDS = (1.0, 0.95, 1.05, 0.9, 1.1)
COMBINED = {"3 (0.9, 1, 1.1)": (1.0, 0.9, 1.1), "5": SPEEDS}


def medoid(hyps: list[str]) -> str:
    """The hypothesis with the fewest word edits to the others (the first on a tie), as the
    engine picks it (``asr.noisy_speeds``)."""
    from duetto.asr.whisper import medoid as medoid_index

    return hyps[medoid_index(hyps)]


def vote(hyps: list[str]) -> str:
    """Word-level majority over slots aligned one hypothesis at a time ("" votes for nothing)."""
    slots = [[w] for w in hyps[0].split()]
    for k, hyp in enumerate(hyps[1:], 1):
        slots = _align(slots, hyp.split(), k)
    out = []
    for slot in slots:
        counts = collections.Counter(slot)
        word = slot[0] if counts[slot[0]] == max(counts.values()) else counts.most_common(1)[0][0]
        if word:
            out.append(word)
    return " ".join(out)


def _align(slots: list[list[str]], words: list[str], n: int) -> list[list[str]]:
    rows, cols = len(slots), len(words)
    cost = np.zeros((rows + 1, cols + 1))
    cost[1:, 0] = np.cumsum([0 if not any(s) else 1 for s in slots])
    cost[0, 1:] = np.arange(1, cols + 1)
    for i in range(1, rows + 1):
        for j in range(1, cols + 1):
            cost[i, j] = min(cost[i - 1, j - 1] + (words[j - 1] not in slots[i - 1]),
                             cost[i - 1, j] + 1, cost[i, j - 1] + 1)  # fmt: skip
    out, i, j = [], rows, cols
    while i or j:
        if i and j and cost[i, j] == cost[i - 1, j - 1] + (words[j - 1] not in slots[i - 1]):
            out.append(slots[i - 1] + [words[j - 1]])
            i, j = i - 1, j - 1
        elif i and cost[i, j] == cost[i - 1, j] + (1 if j else (1 if any(slots[i - 1]) else 0)):
            out.append(slots[i - 1] + [""])
            i -= 1
        else:
            out.append([""] * n + [words[j - 1]])
            j -= 1
    return out[::-1]


def held(asr) -> int:
    """The word filter's held set (100 utterances, babble 5 dB): the candidates of the second
    look (docs/robustness.md), each decoding done once and filtered at every threshold."""
    import hashlib
    from dataclasses import replace

    import word_filter as W
    from duetto.data.augment import speed_perturb
    from duetto.data.textnorm import normalize_text, word_errors

    decode, memo = asr._decode, {}

    def remembered(audio, *args):
        key = (hashlib.sha1(audio.tobytes()).hexdigest(), args)
        if key not in memo:
            memo[key] = decode(audio, *args)
        return memo[key]

    asr._decode = remembered
    rows = [r for r in W._read(W._index("held")) if r["condition"] == "babble 5"]
    nine = tuple(round(0.9 + 0.025 * k, 3) for k in range(9))
    settings = asr.settings
    texts: dict = {}  # (threshold, speed) -> normalized transcript per row
    for n, r in enumerate(rows):
        audio = np.load(W._clip("held", r["id"], r["condition"])).astype(np.float32)
        for s in nine:
            clip = audio if s == 1.0 else speed_perturb(audio, s)
            for t in (0.5, 0.4, 0.3) if s in SPEEDS else (0.5,):
                asr.settings = replace(settings, word_filter_threshold=t)
                text = normalize_text(asr.transcribe(clip).text)
                texts.setdefault((t, s), []).append(text)
        if n % 20 == 19:
            print(f"  {n + 1}/{len(rows)}", flush=True)
    refs = [normalize_text(r["ref"]) for r in rows]

    def wer(t: float, speeds) -> float:
        counts = np.array([word_errors(ref, medoid([texts[t, s][i] for s in speeds]))
                           for i, ref in enumerate(refs)])  # fmt: skip
        return 100 * counts[:, 0].sum() / counts[:, 1].sum()

    print(f"held set, babble 5 dB, {len(rows)} utterances (medoid of the speeds):")
    print(f"  noisy-room settings alone        {wer(0.5, (1.0,)):.1f}")
    print(f"  + 5 speeds                       {wer(0.5, SPEEDS):.1f}")
    print(
        f"  + 9 speeds                       {wer(0.5, (1.0, *(s for s in nine if s != 1.0))):.1f}"
    )
    for t in (0.4, 0.3):
        print(f"  + 5 speeds, filter threshold {t}  {wer(t, SPEEDS):.1f}")
    return 0


def main() -> int:
    import asr_finetune as F
    from duetto.asr.whisper import WhisperASR
    from duetto.config import ASRSettings
    from duetto.data.augment import speed_perturb
    from duetto.data.textnorm import normalize_text, word_errors

    asr = WhisperASR(ASRSettings(model="bundled-robust", word_filter="learned",
                                 word_filter_threshold=0.5, filter_below_snr_db=20.0,
                                 noisy_beam_size=5, threads=2))  # fmt: skip
    if "--held" in sys.argv[1:]:
        return held(asr)
    clips = pickle.loads((F.CACHE / "heldout-clips.pkl").read_bytes())
    for condition in ("clean", "babble 5"):
        rows = []
        for audio, ref in clips[condition]:
            hyps = {}
            for s in SPEEDS:
                clip = audio if s == 1.0 else speed_perturb(audio, s)
                hyps[s] = normalize_text(asr.transcribe(clip.astype(np.float32)).text)
            rows.append((normalize_text(ref), hyps))

        def wer(pick, rows=rows) -> float:
            counts = np.array([word_errors(ref, pick(h)) for ref, h in rows])
            return 100 * counts[:, 0].sum() / counts[:, 1].sum()

        alone = ", ".join(f"{s}: {wer(lambda h, s=s: h[s]):.1f}" for s in SPEEDS)
        print(f"{condition}: each speed alone {alone}")
        for name, speeds in COMBINED.items():
            m = wer(lambda h, sp=speeds: medoid([h[s] for s in sp]))
            v = wer(lambda h, sp=speeds: vote([h[s] for s in sp]))
            print(f"  {name} speeds: medoid {m:.1f}, word vote {v:.1f}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
