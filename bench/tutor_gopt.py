"""Train the tutor's GOPT-style transformer scorer on speechocean762 *train* (torch, CPU).

    nice -n 10 .venv/bin/python bench/tutor_gopt_data.py           # cache the per-phone rows
    nice -n 10 .venv/bin/python bench/tutor_gopt.py --cv           # speaker-grouped 5-fold CV
    nice -n 10 .venv/bin/python bench/tutor_gopt.py                # fit on all train, write weights
    nice -n 10 .venv/bin/python bench/tutor_gopt.py --dev FILE     # score cached dev rows (once)

The CV prints out-of-fold PCC at each level after every ``--every`` epochs, for the transformer
alone and blended with the ridge's out-of-fold predictions; the blend weight of each output is
the PCC-best on train out-of-fold predictions; it also prints the phone PCC over the most
proficient train speakers (closer to dev's good readers than the pooled PCC). Writes
src/duetto/apps/tutor/weights/gopt.npz, which the numpy forward pass in
``duetto.apps.tutor.gopt`` runs (torch is not needed there).
"""

from __future__ import annotations

import argparse
import os
import pickle
import sys
import time
from pathlib import Path

import numpy as np
import torch
from sklearn.model_selection import GroupKFold
from torch import nn
from torch.nn import functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent))
from duetto.apps.tutor import gopt  # noqa: E402
from tutor_gopt_data import CACHE  # noqa: E402

N_PHONES = 40  # 39 CMU phones + unknown
MAX_POS = 64
N_UTT = 5
BLEND_GRID = np.round(np.arange(0.0, 1.01, 0.05), 2)
UTT_NAMES = ("accuracy", "completeness", "fluency", "prosodic", "total")


class Block(nn.Module):
    """Pre-norm transformer block (what ``gopt.GOPT.forward`` computes with numpy)."""

    def __init__(self, d: int, heads: int, ff: int, drop: float):
        super().__init__()
        self.heads = heads
        self.ln1, self.ln2 = nn.LayerNorm(d), nn.LayerNorm(d)
        self.qkv, self.proj = nn.Linear(d, 3 * d), nn.Linear(d, d)
        self.ff1, self.ff2 = nn.Linear(d, ff), nn.Linear(ff, d)
        self.drop = nn.Dropout(drop)

    def forward(self, h, pad):
        b, n, d = h.shape
        q, k, v = self.qkv(self.ln1(h)).split(d, dim=-1)
        shape = (b, n, self.heads, d // self.heads)
        q, k, v = (t.reshape(shape).transpose(1, 2) for t in (q, k, v))
        att = (q @ k.transpose(-1, -2)) / (d // self.heads) ** 0.5
        att = att.masked_fill(pad[:, None, None, :], float("-inf")).softmax(-1)
        out = (att @ v).transpose(1, 2).reshape(b, n, d)
        h = h + self.drop(self.proj(out))
        return h + self.drop(self.ff2(F.gelu(self.ff1(self.ln2(h)), approximate="tanh")))


class Net(nn.Module):
    def __init__(self, dim_in: int, d: int, layers: int, heads: int, drop: float, in_drop: float,
                 utt_in: int = 0):  # fmt: skip
        super().__init__()
        self.inp = nn.Linear(dim_in, d)
        # Optional: the ridge's utterance features (fluency, pauses, ridge predictions) projected
        # onto the utterance tokens, which otherwise see only the phones.
        self.utt_in = nn.Linear(utt_in, d) if utt_in else None
        self.phone_emb = nn.Embedding(N_PHONES, d)
        self.pos_emb = nn.Parameter(torch.randn(MAX_POS, d) * 0.02)
        self.cls = nn.Parameter(torch.randn(N_UTT, d) * 0.02)
        self.blocks = nn.ModuleList(Block(d, heads, 2 * d, drop) for _ in range(layers))
        self.ln = nn.LayerNorm(d)
        self.phone, self.word = nn.Linear(d, 1), nn.Linear(d, 3)
        self.utt_w = nn.Parameter(torch.randn(d, N_UTT) * 0.02)
        self.utt_b = nn.Parameter(torch.zeros(N_UTT))
        self.in_drop = nn.Dropout(in_drop)
        self.drop = nn.Dropout(drop)

    def forward(self, x, phone, mask, u=None):
        b, n, _ = x.shape
        h = self.inp(self.in_drop(x)) + self.phone_emb(phone) + self.pos_emb[:n]
        cls = self.cls.expand(b, -1, -1)
        if self.utt_in is not None:
            cls = cls + self.utt_in(self.in_drop(u))[:, None, :]
        h = torch.cat([cls, self.drop(h)], 1)
        pad = torch.cat([torch.zeros(b, N_UTT, dtype=torch.bool), ~mask], 1)
        for block in self.blocks:
            h = block(h, pad)
        h = self.ln(h)
        tokens = h[:, N_UTT:]
        utt = (h[:, :N_UTT] * self.utt_w.T[None]).sum(-1) + self.utt_b
        return self.phone(tokens)[..., 0], self.word(tokens), utt

    def export(self, mean, scale, umean=None, uscale=None) -> dict:
        p = {"mean": mean, "scale": scale, "in.w": self.inp.weight.T, "in.b": self.inp.bias,
             "phone_emb": self.phone_emb.weight, "pos_emb": self.pos_emb, "cls": self.cls,
             "ln.g": self.ln.weight, "ln.b": self.ln.bias, "phone.w": self.phone.weight.T,
             "phone.b": self.phone.bias, "word.w": self.word.weight.T, "word.b": self.word.bias,
             "utt.w": self.utt_w, "utt.b": self.utt_b}  # fmt: skip
        if self.utt_in is not None:
            p.update({"utt_in.w": self.utt_in.weight.T, "utt_in.b": self.utt_in.bias,
                      "utt_mean": umean, "utt_scale": uscale})  # fmt: skip
        for k, blk in enumerate(self.blocks):
            for name, mod in (
                ("qkv", blk.qkv),
                ("proj", blk.proj),
                ("ff1", blk.ff1),
                ("ff2", blk.ff2),
            ):
                p[f"l{k}.{name}.w"], p[f"l{k}.{name}.b"] = mod.weight.T, mod.bias
            for name, mod in (("ln1", blk.ln1), ("ln2", blk.ln2)):
                p[f"l{k}.{name}.g"], p[f"l{k}.{name}.b"] = mod.weight, mod.bias
        return {k: (v.detach().numpy() if torch.is_tensor(v) else v) for k, v in p.items()}


def batch(records, idx, mean, scale, umean, uscale):
    n = max(len(records[i]["x"]) for i in idx)
    dim = records[idx[0]]["x"].shape[1]
    x = np.zeros((len(idx), n, dim), np.float32)
    phone = np.zeros((len(idx), n), np.int64)
    mask = np.zeros((len(idx), n), bool)
    yp = np.full((len(idx), n), np.nan, np.float32)
    yw = np.full((len(idx), n, 3), np.nan, np.float32)
    yu = np.zeros((len(idx), N_UTT), np.float32)
    u = np.zeros((len(idx), len(umean)), np.float32)
    for b, i in enumerate(idx):
        r = records[i]
        m = len(r["x"])
        x[b, :m] = (r["x"] - mean) / scale
        phone[b, :m] = r["phone"]
        mask[b, :m] = True
        yp[b, :m] = r["y_phone"]
        yw[b, :m] = r["y_word"][r["word"]] / gopt.SCALE if len(r["y_word"]) else np.nan
        yu[b] = r["y_utt"] / gopt.SCALE
        u[b] = (r["utt_x"] - umean) / uscale
    wp = np.ones((len(idx), n), np.float32)
    for b, i in enumerate(idx):
        wp[b, : len(records[i]["x"])] = records[i].get("weight", 1.0)
    return [torch.from_numpy(a) for a in (x, phone, mask, yp, yw, yu, u, wp)]


def _masked_mse(pred, target, weight=None):
    keep = ~torch.isnan(target)
    if not keep.any():
        return pred.sum() * 0.0
    if weight is None:
        return F.mse_loss(pred[keep], target[keep])
    w = weight[keep]
    return (w * (pred[keep] - target[keep]) ** 2).sum() / w.sum()


def _masked_pcc(pred, target):
    """Pearson correlation over the scored phones of a batch (differentiable)."""
    keep = ~torch.isnan(target)
    if keep.sum() < 3:
        return pred.sum() * 0.0
    a, b = pred[keep], target[keep]
    a, b = a - a.mean(), b - b.mean()
    return (a * b).sum() / (a.norm() * b.norm() + 1e-6)


def _masked_utt_pcc(pred, target):
    """Mean Pearson correlation within each utterance of a batch (those whose human phone
    scores vary), so only the ranking of phones inside an utterance counts."""
    keep = (~torch.isnan(target)).float()
    t = torch.nan_to_num(target)
    cnt = keep.sum(1).clamp(min=1.0)
    a = (pred - (pred * keep).sum(1, keepdim=True) / cnt[:, None]) * keep
    b = (t - (t * keep).sum(1, keepdim=True) / cnt[:, None]) * keep
    var_b = (b * b).sum(1)
    rows = var_b > 1e-6
    if not rows.any():
        return pred.sum() * 0.0
    a, b = a[rows], b[rows]  # (sqrt at 0 has no gradient: drop the constant rows first)
    return ((a * b).sum(1) / (((a * a).sum(1) + 1e-8).sqrt() * var_b[rows].sqrt())).mean()


def fit(records, idx, args, seed: int, evaluate=None):
    """Train on ``records[idx]``; ``evaluate(net, mean, scale, epoch)`` is called every
    ``args.every`` epochs. Returns (net, mean, scale)."""
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    for r in records:
        r.pop("weight", None)
    if args.balance:
        # each speaker's phones weighted by 1 / (spread of its phone scores + balance): the
        # many weak readers' large errors no longer dominate the fine distinctions of good ones
        by_spk = {}
        for i in idx:
            by_spk.setdefault(records[i]["speaker"], []).append(records[i]["y_phone"])
        spread = {k: float(np.nanstd(np.concatenate(v))) for k, v in by_spk.items()}
        for i in idx:
            records[i]["weight"] = 1.0 / (spread[records[i]["speaker"]] + args.balance)
    x = np.concatenate([records[i]["x"] for i in idx]).astype(np.float64)
    mean, scale = x.mean(0).astype(np.float32), (x.std(0) + 1e-3).astype(np.float32)
    u = np.array([records[i]["utt_x"] for i in idx], np.float64)
    umean, uscale = u.mean(0).astype(np.float32), (u.std(0) + 1e-3).astype(np.float32)
    net = Net(x.shape[1], args.width, args.layers, args.heads, args.dropout, args.in_dropout,
              u.shape[1] if args.utt_input else 0)  # fmt: skip
    opt = torch.optim.AdamW(net.parameters(), lr=args.lr, weight_decay=args.wd)
    steps = args.epochs * int(np.ceil(len(idx) / args.batch))
    print(f"  fit on {len(idx)} utterances: {steps} steps", flush=True)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, args.lr, total_steps=steps, pct_start=0.1)
    # Batches of similar length, built once (per-step work is what costs on a shared CPU);
    # the order of the batches is shuffled every epoch.
    idx = np.asarray(idx)
    by_len = idx[np.argsort([len(records[i]["x"]) for i in idx], kind="stable")]
    batches = [batch(records, by_len[s : s + args.batch], mean, scale, umean, uscale)
               for s in range(0, len(by_len), args.batch)]  # fmt: skip
    for epoch in range(1, args.epochs + 1):
        net.train()
        for k in rng.permutation(len(batches)):
            xb, pb, mb, yp, yw, yu, ub, wb = batches[k]
            p, w, u = net(xb, pb, mb, ub)
            loss = (
                args.phone_weight * _masked_mse(p, yp, wb if args.balance else None)
                + args.word_weight * _masked_mse(w, yw)
                + args.utt_weight * _masked_mse(u, yu)
            )
            if args.pcc_weight:
                pcc = _masked_utt_pcc(p, yp) if args.pcc_within else _masked_pcc(p, yp)
                loss = loss + args.pcc_weight * (1.0 - pcc)
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
        if evaluate is not None and (epoch % args.every == 0 or epoch == args.epochs):
            evaluate(net, (mean, scale, umean, uscale), epoch)
    return net, (mean, scale, umean, uscale)


@torch.no_grad()
def predict(net, records, idx, norm):
    """Per record: phone (n,), word (words, 3), utterance (5,) on the human scales (unclipped)."""
    net.eval()
    out = {}
    for s in range(0, len(idx), 64):
        part = idx[s : s + 64]
        xb, pb, mb, _, _, _, ub, _ = batch(records, part, *norm)
        p, w, u = net(xb, pb, mb, ub)
        for b, i in enumerate(part):
            r = records[i]
            m = len(r["x"])
            word = np.array(r["ridge_word"], np.float64, copy=True) * np.nan
            for k in range(len(word)):
                sel = r["word"] == k
                if sel.any():
                    word[k] = w[b, :m][torch.from_numpy(sel)].mean(0).numpy() * gopt.SCALE
            out[i] = (p[b, :m].numpy().astype(np.float64), word, u[b].numpy() * gopt.SCALE)
    return out


def _average(runs: list[dict]) -> dict:
    """Member-averaged predictions (what the shipped ensemble computes)."""
    return {i: tuple(np.mean([r[i][k] for r in runs], axis=0) for k in range(3)) for i in runs[0]}


def _pcc(a, b):
    a, b = np.asarray(a, float).ravel(), np.asarray(b, float).ravel()
    keep = ~(np.isnan(a) | np.isnan(b))
    return float(np.corrcoef(a[keep], b[keep])[0, 1])


def flat(records, preds):
    """Human and predicted arrays per output: {name: (human, transformer, ridge)}."""
    out = {}
    ids = sorted(preds)
    out["phone"] = tuple(np.concatenate(a) for a in zip(*[
        (records[i]["y_phone"], preds[i][0], records[i]["ridge_phone"]) for i in ids], strict=True))  # fmt: skip
    for k, name in enumerate(("word accuracy", "word stress", "word total")):
        out[name] = tuple(np.concatenate(a) for a in zip(*[
            (records[i]["y_word"][:, k], np.where(np.isnan(preds[i][1][:, k]), records[i]["ridge_word"][:, k], preds[i][1][:, k]),
             records[i]["ridge_word"][:, k]) for i in ids], strict=True))  # fmt: skip
    for k, name in enumerate(UTT_NAMES):
        out[f"utterance {name}"] = tuple(
            np.array(a) for a in zip(*[(records[i]["y_utt"][k], preds[i][2][k], records[i]["ridge_utt"][k]) for i in ids], strict=True)
        )  # fmt: skip
    return out


def best_blend(h, g, r) -> tuple[float, float]:
    scores = [(_pcc(h, a * g + (1 - a) * r), a) for a in BLEND_GRID]
    pcc, a = max(scores)
    return a, pcc


def report(tag, table, blends=None):
    """One line: transformer alone / blended (blend weight) per output."""
    parts = []
    for name, (h, g, r) in table.items():
        alone = _pcc(h, g)
        if blends is None:
            a, mixed = best_blend(h, g, r)
        else:
            a = blends[name]
            mixed = _pcc(h, a * g + (1 - a) * r)
        parts.append(f"{name} {alone:.3f}/{mixed:.3f}({a:.2f}) ridge {_pcc(h, r):.3f}")
    print(f"{tag}: " + " | ".join(parts), flush=True)


def cv(records, args):
    groups = np.array([r["speaker"] for r in records])
    folds = list(GroupKFold(n_splits=5).split(np.zeros(len(records)), groups=groups))
    oof = {}  # epoch -> {record index: preds}
    started = time.time()
    for f, (tr, te) in enumerate(folds):
        runs = {}  # epoch -> [per-seed predictions]

        def evaluate(net, norm, epoch, te=te, runs=runs):
            runs.setdefault(epoch, []).append(predict(net, records, te, norm))

        for s in range(args.cv_seeds):  # seed 100 * f alone by default
            fit(records, tr, args, seed=100 * f + s + args.seed0, evaluate=evaluate)
        for epoch, seeds in runs.items():
            oof.setdefault(epoch, {}).update(_average(seeds))
        print(f"fold {f + 1}/5 done ({time.time() - started:.0f} s)", flush=True)
    for epoch in sorted(oof):
        report(f"CV epoch {epoch}", flat(records, oof[epoch]))
    report_proficient(records, oof[max(oof)])
    return oof[max(oof)]


# Dev's readers are mostly good (phone score std 0.29 against 0.41 on train), and pooled train
# PCC is dominated by the weakest quarter of the train speakers (std 0.68): the phone PCC over
# the other three quarters (std 0.11-0.23) is the closer guide to how phone scoring ranks
# the phones of good readers.
PROFICIENT_SHARE = 0.75


def report_proficient(records, preds) -> None:
    """Phone PCC (transformer alone / blended / ridge) over the train speakers whose human mean
    phone score is in the top ``PROFICIENT_SHARE``."""
    by_spk: dict = {}
    for r in records:
        by_spk.setdefault(r["speaker"], []).append(r["y_phone"])
    mean = {k: float(np.nanmean(np.concatenate(v))) for k, v in by_spk.items()}
    ranked = sorted(mean, key=mean.get)
    keep = set(ranked[int(round(len(ranked) * (1 - PROFICIENT_SHARE))) :])
    ids = [i for i in sorted(preds) if records[i]["speaker"] in keep]
    h, g, r = flat(records, {i: preds[i] for i in ids})["phone"]
    a = best_blend(*flat(records, preds)["phone"])[0]
    print(f"phone PCC, the {len(keep)} most proficient speakers: alone {_pcc(h, g):.3f} "
          f"blend {_pcc(h, a * g + (1 - a) * r):.3f}({a:.2f}) ridge {_pcc(h, r):.3f}")  # fmt: skip


def blends_from(table) -> dict:
    return {name: best_blend(*v)[0] for name, v in table.items()}


def threshold_from(h, p) -> float:
    """F1-best cut on predicted phone scores against human mean < 2 (train out of fold)."""
    keep = ~np.isnan(h)
    human, pred = h[keep] < 2.0, p[keep]
    best = max(
        (2 * float(((pred < c) & human).sum()) / max((pred < c).sum() + human.sum(), 1), c)
        for c in np.arange(1.0, 2.0, 0.01)
    )
    return float(best[1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cv", action="store_true", help="speaker-grouped 5-fold CV on train")
    parser.add_argument("--dev", default=None, help="evaluate these weights on the cached dev rows")
    parser.add_argument("--out", type=Path, default=gopt.WEIGHTS)
    parser.add_argument("--width", type=int, default=32)
    parser.add_argument("--layers", type=int, default=2)
    parser.add_argument("--heads", type=int, default=1)
    parser.add_argument("--dropout", type=float, default=0.1)
    parser.add_argument("--in-dropout", type=float, default=0.2)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--wd", type=float, default=0.05)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--every", type=int, default=5)
    parser.add_argument("--utt-weight", type=float, default=1.0)
    parser.add_argument("--phone-weight", type=float, default=1.0, help="phone MSE loss weight")
    parser.add_argument("--word-weight", type=float, default=1.0, help="word MSE loss weight")
    parser.add_argument("--pcc-weight", type=float, default=0.0, help="+ (1 - batch phone PCC)")
    parser.add_argument("--pcc-within", action="store_true", help="PCC within each utterance")
    parser.add_argument("--balance", type=float, default=0.0, help="1 / (speaker std + this)")
    parser.add_argument("--cv-seeds", type=int, default=1, help="models averaged per CV fold")
    parser.add_argument("--utt-input", action="store_true", help="utterance features -> CLS tokens")
    parser.add_argument("--seeds", type=int, default=3, help="models averaged (final fit only)")
    parser.add_argument("--seed0", type=int, default=0, help="added to every seed")
    parser.add_argument("--oof", type=Path, default=None, help="CV predictions file (for blends)")
    parser.add_argument("--cache", type=Path, default=CACHE, help="rows from tutor_gopt_data.py")
    args = parser.parse_args()
    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))
    print(vars(args), flush=True)
    if args.dev:
        evaluate_dev(args.dev, args.cache)
        return
    records = pickle.loads((args.cache / "train.pkl").read_bytes())
    if args.cv:
        preds = cv(records, args)
        if args.oof:
            args.oof.write_bytes(pickle.dumps(preds))
        return
    fit_all(records, args)


def blend_weights(records, preds) -> tuple[dict, float]:
    """Per-level blend weights (transformer share, PCC-best on train out-of-fold predictions)
    and the F1-best mispronunciation cut on the blended out-of-fold phone scores."""
    table = flat(records, preds)
    w = blends_from(table)
    blend = {
        "phone": np.array(w["phone"]),
        "word": np.array([w[f"word {n}"] for n in ("accuracy", "stress", "total")]),
        "utterance": np.array([w[f"utterance {n}"] for n in UTT_NAMES]),
    }
    h, g, r = table["phone"]
    return blend, threshold_from(h, w["phone"] * g + (1 - w["phone"]) * r)


def fit_all(records, args) -> None:
    if args.oof is None or not args.oof.is_file():
        raise SystemExit("give --oof FILE written by --cv with the same settings (for the blend)")
    blend, threshold = blend_weights(records, pickle.loads(args.oof.read_bytes()))
    print(f"blend (transformer share) {blend}; phone error threshold {threshold:.2f}", flush=True)
    members = []
    for seed in range(args.seeds):
        net, norm = fit(records, np.arange(len(records)), args, seed=1000 + seed + args.seed0)
        members.append(net.export(*norm))
        print(f"member {seed + 1}/{args.seeds} trained", flush=True)
    gopt.save(args.out, members, args.heads, args.layers, blend, threshold)
    print(f"wrote {args.out} ({args.out.stat().st_size / 1024:.0f} KiB)")


def evaluate_dev(path, cache: Path = CACHE) -> None:
    """PCC on the cached dev rows: the ridge, the transformer alone and the blend (run once per
    setting; nothing is chosen here)."""
    records = pickle.loads((cache / "dev.pkl").read_bytes())
    model = gopt.load_gopt(str(path))
    alone = gopt.GOPT(model.members, model.heads, model.layers,
                      {k: np.ones_like(v) for k, v in model.blend.items()}, None)  # fmt: skip
    for tag, m in (("transformer alone", alone), ("blend", model)):
        preds = {
            i: m.predict_ids(
                r["x"],
                r["phone"],
                r["word"],
                r["ridge_phone"],
                r["ridge_word"],
                r["ridge_utt"],
                r["utt_x"],
            )  # fmt: skip
            for i, r in enumerate(records)
        }
        table = flat(records, preds)
        print(f"dev {tag}: " + "  ".join(f"{n} {_pcc(h, g):.3f}" for n, (h, g, _) in table.items()))
    print("dev ridge: " + "  ".join(f"{n} {_pcc(h, r):.3f}" for n, (h, _, r) in table.items()))


if __name__ == "__main__":
    main()
