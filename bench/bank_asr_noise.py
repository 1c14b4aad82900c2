"""Does training on ASR-noised text help the spoken queries? Measured, with the shipped model.

    nice -n 5 .venv/bin/python bench/bank_spoken.py --split train --per-intent 3
    nice -n 5 .venv/bin/python bench/bank_spoken.py --split test --per-intent 10
    nice -n 5 .venv/bin/python bench/bank_asr_noise.py --train-per-intent 3 --test-per-intent 10

The shipped NLU mixes the fine-tuned model's intent logits with a linear head on pooled
features (``nlu.npz``). Here that linear head is refitted twice with the shipped settings:
on BANKING77 train alone, and on train plus the ASR transcripts (clean and babble) of spoken
train queries; both are scored on the spoken test transcripts, alone and in the shipped mix.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "bench"))

from bank_finetune import log_softmax, model_key  # noqa: E402
from bank_spoken import cache_path, read_transcripts  # noqa: E402
from duetto.apps.bank.heads import fit_softmax  # noqa: E402
from duetto.apps.bank.nlu import DATA_DIR, MODEL_FILE, BankNLU  # noqa: E402
from duetto.apps.bank.training import B77_C, DEFAULT_CACHE, encode_cached, load_banking77  # noqa: E402

DATA = ROOT.parent / "shared" / "data"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--train-per-intent", type=int, default=3)
    p.add_argument("--test-per-intent", type=int, default=10)
    p.add_argument("--train-tags", nargs="*", default=[""],
                   help="ASR settings of the train transcripts to add (cache tags, '' = default)")  # fmt: skip
    p.add_argument("--test-tag", default="", help="ASR setting of the test transcripts")
    args = p.parse_args(argv)

    nlu = BankNLU()
    labels = list(nlu.intent_labels)
    cols = np.flatnonzero(np.abs(nlu.intents.weights).sum(0) > 0)
    key = model_key(DATA_DIR / MODEL_FILE)
    texts, gold = load_banking77(DATA, "train")
    x = np.stack(
        [
            e.sentence
            for e in encode_cached(nlu.encoder, texts, DEFAULT_CACHE, f"banking77-train-{key}")
        ]
    )
    spoken_train = [
        r
        for tag in args.train_tags
        for r in read_transcripts(cache_path(DEFAULT_CACHE, "train", args.train_per_intent, tag))
    ]
    extra_t = [r[c] or " " for r in spoken_train for c in ("clean", "babble")]
    extra_y = [r["label"] for r in spoken_train for _ in ("clean", "babble")]
    x_extra = np.stack([e.sentence for e in nlu.encoder.encode(extra_t)])
    rows = read_transcripts(cache_path(DEFAULT_CACHE, "test", args.test_per_intent, args.test_tag))
    test_gold = np.array([labels.index(r["label"]) for r in rows])
    tests = {
        c: nlu.encoder.encode([r[c] or " " for r in rows]) for c in ("text", "clean", "babble")
    }
    print(f"train {len(texts)} + {len(extra_t)} ASR transcripts of {len(spoken_train)} spoken train queries; "
          f"{len(rows)} spoken test queries; linear head on {len(cols)} columns, C={B77_C}, mix w={nlu.mix}", flush=True)  # fmt: skip
    heads = {
        "train only": fit_softmax(x[:, cols], gold, B77_C, labels=labels),
        "train + ASR transcripts": fit_softmax(np.concatenate([x, x_extra])[:, cols], gold + extra_y, B77_C, labels=labels),
    }  # fmt: skip
    print("| linear head fitted on | scored as | written | spoken clean | spoken babble 5 dB |")
    print("| --- | --- | --- | --- | --- |")
    for name, head in heads.items():
        for how in ("linear head alone", f"mix with fine-tuned (w={nlu.mix})"):
            accs = []
            for cond in ("text", "clean", "babble"):
                enc = tests[cond]
                lin = log_softmax(head.logits(np.stack([e.sentence for e in enc])[:, cols]))
                if how.startswith("mix"):
                    lin = (1 - nlu.mix) * log_softmax(
                        np.stack([e.logits for e in enc])
                    ) + nlu.mix * lin
                accs.append(float((lin.argmax(1) == test_gold).mean()))
            print(f"| {name} | {how} | " + " | ".join(f"{a:.2%}" for a in accs) + " |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
