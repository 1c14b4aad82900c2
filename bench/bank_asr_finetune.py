"""Multi-condition LoRA adaptation of the bundled Whisper tiny.en on spoken BANKING77 *train*
queries (issue 8: the bank agent's ASR in babble), reusing bench/asr_finetune.py.

The bank's ASR errors in babble cost ~20 points of spoken intent accuracy. Here tiny.en is
adapted (LoRA rank 8 on q,v, merged back into a CTranslate2 model) on bank queries spoken by
the project's TTS, each mixed at random as bench/asr_finetune.py mixes: clean, babble at 0-20 dB
(speechocean762 train talkers, never ``Babble``'s evaluation pool), white at 5-20 dB. A share
of the batches are speechocean762 train utterances (human speech, so that it is not
forgotten). Bank queries are decoded after the bank's ASR prompt, as a bank call decodes them,
so the adapters are trained after it too.

Data hygiene: the 10% train holdout of the bank NLU (bench/bank_finetune.py) is never spoken
for training; it chooses the step (bench/bank_spoken.py --split holdout). Voices: the bundled
Piper voice at 0.85/1/1.2x and espeak-ng en-us only; espeak en-gb-x-rp (the fifth evaluation
voice) stays unseen, so it shows what transfers to a voice the model never heard.

    R="nice -n 10 .venv/bin/python bench/bank_asr_finetune.py"
    $R speak --per-intent 24          # TTS of 24 train queries per intent (1,848), resumable
    $R pack                           # Opus speech + segments + token ids, speechocean part
    # training: on CUDA where there is one (the shipped adapters: an H100, ~0.03 s a step with
    # OMP_NUM_THREADS=1 and 15 loader workers); on one CPU thread ~4 s a step
    OMP_NUM_THREADS=1 $R train --steps 2400 --batch 16 --save-every 2400 --workers 15 --out runs/s2400
    $R export --lora runs/s2400/lora-2400.npz --name bank-s2400   # deltas + merged model folder
    .venv/bin/python bench/bank_spoken.py --split holdout --per-intent 4 --set ha --prompt \
        --beam 5 --nbest 5 --asr-model ~/.cache/duetto/bankasrft/models/bank-s2400
    $R score --split holdout --per-intent 4 --tags prompt-beam5-nbest5-set-ha \
        bank-s2400-prompt-beam5-nbest5-set-ha   # accuracy and WER per voice group

The shipped deltas are ``src/duetto/asr/bank-tiny-en-lora.npz`` (``asr.model = "bundled-bank"``).
The cache lives in ``~/.cache/duetto/bankasrft/``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "bench"))

DATA = ROOT.parent / "shared" / "data"
CACHE = Path(os.environ.get("DUETTO_CACHE", Path.home() / ".cache" / "duetto")) / "bankasrft"
SEED = 0
# The evaluation voices of bench/bank_spoken.py less espeak en-gb-x-rp, which stays unseen.
TRAIN_VOICES = (
    ("piper", "bundled", 0.85),
    ("piper", "bundled", 1.0),
    ("piper", "bundled", 1.2),
    ("espeak", "en-us", 1.0),
)


def train_queries(per_intent: int) -> list[int]:
    """``per_intent`` BANKING77 train queries of each intent (stratified, seed 0), none of the
    NLU's 10% holdout."""
    from bank_finetune import HOLDOUT, stratified_split
    from bank_spoken import stratified_sample
    from duetto.apps.bank.training import load_banking77

    _, labels = load_banking77(DATA, "train")
    fit = stratified_split(labels, HOLDOUT)[0]
    return sorted(fit[k] for k in stratified_sample([labels[i] for i in fit], per_intent))


def speech_dir() -> Path:
    return CACHE / "speech"


def speak(args) -> int:
    """Each picked train query spoken clean by one training voice (cycled), 16 kHz int16."""
    from duetto.apps.bank.training import load_banking77
    from duetto.audio import SAMPLE_RATE, resample
    from duetto.config import TTSSettings
    from duetto.tts import load_tts, synthesize

    texts, labels = load_banking77(DATA, "train")
    picked = train_queries(args.per_intent)
    folder = speech_dir()
    folder.mkdir(parents=True, exist_ok=True)
    # Round robin over the intents, so that a run stopped early still covers every intent.
    rank = {
        i: k for label in set(labels) for k, i in enumerate(j for j in picked if labels[j] == label)
    }
    todo = sorted(
        (i for i in picked if not (folder / f"{i}.npy").exists()), key=lambda i: (rank[i], i)
    )
    print(f"{len(picked)} train queries, {len(todo)} to speak -> {folder}", flush=True)
    voices = {
        (b, v): load_tts(
            TTSSettings(backend=b, voice=v, variation=1.0, watermark=False, styles=False)
        )
        for b, v, _ in TRAIN_VOICES
    }
    started = time.perf_counter()
    for n, i in enumerate(todo, 1):
        backend, voice, speed = TRAIN_VOICES[picked.index(i) % len(TRAIN_VOICES)]
        tts = voices[(backend, voice)]
        speech = resample(synthesize(tts, texts[i], speed=speed), tts.sample_rate, SAMPLE_RATE)
        pcm = (np.clip(speech, -1, 1) * 32767).astype(np.int16)
        np.save(folder / f"{i}.tmp.npy", pcm)
        (folder / f"{i}.tmp.npy").replace(folder / f"{i}.npy")
        if n % 50 == 0 or n == len(todo):
            rate = (time.perf_counter() - started) / n
            print(f"  {n}/{len(todo)} {rate:.2f} s/query, ~{rate * (len(todo) - n) / 60:.0f} min left",
                  flush=True)  # fmt: skip
    index = [{"i": i, "text": texts[i], "label": labels[i],
              "voice": "{}:{}:{}".format(*TRAIN_VOICES[k % len(TRAIN_VOICES)])}
             for k, i in enumerate(picked)]  # fmt: skip
    (CACHE / f"speech-{args.per_intent}per-intent.json").write_text(json.dumps(index))
    return 0


# ---------------------------------------------------------------- training pack

# A share of the batches are speechocean762 train utterances (human speech, no prompt).
SPEECHOCEAN_SHARE = 0.3
SPEECHOCEAN_TARGETS = 450  # random training utterances of the non-held speakers
BABBLE_PER_SPEAKER = 3  # training babble: utterances 3-5 of each training speaker (not the pool)


def bank_target(text: str) -> str:
    """A BANKING77 query as Whisper writes a sentence: capital first, closing punctuation."""
    text = " ".join(text.split())
    text = text[:1].upper() + text[1:]
    return text if text[-1:] in ".?!" else text + "."


def opus(audio: np.ndarray) -> bytes:
    """16 kHz float audio as Ogg Opus bytes (~30 kbit/s): the training pack must be small enough
    to travel to the accelerator machine."""
    import io

    import soundfile as sf

    buf = io.BytesIO()
    sf.write(buf, audio, 16000, format="OGG", subtype="OPUS")
    return buf.getvalue()


def unopus(blob: bytes, n: int) -> np.ndarray:
    import io

    import soundfile as sf

    audio, _ = sf.read(io.BytesIO(blob), dtype="float32")
    audio = audio[:n]
    return np.pad(audio, (0, n - len(audio)))


def pack(args) -> int:
    """Everything training reads, in one pickle of plain Python values: bank speech (Opus),
    its speech segments and token ids (after the bank's prompt); speechocean762 training targets
    and training babble (Opus, from bench/asr_finetune.py's cache)."""
    import pickle

    from asr_finetune import CACHE as SO_CACHE
    from asr_finetune import cased, speakers_split, tokenizer
    from duetto.apps.bank.nlu import ASR_PROMPT
    from duetto.asr.whisper import _prompt_tokens
    from duetto.data.noise import NoSpeechError, _trim_silence, active_power, speech_activity

    tok = tokenizer()
    plain = [*tok.sot_sequence, tok.no_timestamps]
    out = {"bank_prefix": [*_prompt_tokens(tok, ASR_PROMPT), *plain], "so_prefix": plain,
           "eot": tok.eot, "bank": [], "so": [], "babble": []}  # fmt: skip
    from duetto.apps.bank.training import load_banking77

    texts, _ = load_banking77(DATA, "train")
    picked = train_queries(args.per_intent)
    index = [{"i": i, "text": texts[i], "voice": "{}:{}:{}".format(*TRAIN_VOICES[k % len(TRAIN_VOICES)])}
             for k, i in enumerate(picked)]  # fmt: skip
    held_texts = holdout_texts()
    earlier = pickle.loads(Path(args.reuse).read_bytes()) if args.reuse else {"bank": []}
    done = {x["i"]: x for x in earlier["bank"]}
    for k, r in enumerate(index):
        path = speech_dir() / f"{r['i']}.npy"
        if not path.exists():
            continue
        assert r["text"] not in held_texts
        if r["i"] in done:
            out["bank"].append(done[r["i"]])
            continue
        audio = np.load(path).astype(np.float32) / 32767
        out["bank"].append({"i": r["i"], "voice": r["voice"], "n": len(audio), "opus": opus(audio),
                            "segments": speech_activity(audio),
                            "tokens": tok.encode(" " + bank_target(r["text"])) + [tok.eot]})  # fmt: skip
        if k % 200 == 0:
            print(f"  bank {k}/{len(index)}", flush=True)
    if args.reuse:  # the speechocean part of an earlier pack (it does not change)
        out["so"], out["babble"] = earlier["so"], earlier["babble"]
        return _write_pack(out, Path(args.out))
    audio_cache = pickle.loads((SO_CACHE / "train-audio.pkl").read_bytes())
    train_utts, _, _ = speakers_split()
    rng = np.random.default_rng(SEED)
    for j in sorted(rng.choice(len(train_utts), SPEECHOCEAN_TARGETS, replace=False)):
        u = train_utts[j]
        audio, segments = audio_cache[u.id]
        out["so"].append({"id": u.id, "speaker": u.speaker, "n": len(audio), "opus": opus(audio),
                          "segments": segments,
                          "tokens": tok.encode(" " + cased(u.text)) + [tok.eot]})  # fmt: skip
    by_speaker: dict[str, list] = {}
    for u in train_utts:
        by_speaker.setdefault(u.speaker, []).append(u)
    for speaker, utts in sorted(by_speaker.items()):
        for u in utts[:BABBLE_PER_SPEAKER]:  # as asr_finetune.TrainingBabble, a smaller pool
            audio = audio_cache[u.id][0]
            try:
                level = active_power(audio)
            except NoSpeechError:
                level = float(np.mean(audio.astype(np.float64) ** 2)) or 1.0
            clip = _trim_silence(audio)
            out["babble"].append({"id": u.id, "speaker": speaker, "n": len(clip),
                                  "opus": opus(clip), "scale": float(1 / np.sqrt(level))})  # fmt: skip
    return _write_pack(out, Path(args.out))


def _write_pack(out: dict, path: Path) -> int:
    import pickle

    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(pickle.dumps(out, protocol=4))
    sizes = {k: sum(len(x["opus"]) for x in out[k]) / 2**20 for k in ("bank", "so", "babble")}
    print(f"{path}: {len(out['bank'])} bank, {len(out['so'])} speechocean, "
          f"{len(out['babble'])} babble clips; MiB {sizes}")  # fmt: skip
    return 0


def holdout_texts() -> set[str]:
    """The texts of the NLU's 10% train holdout (never trained on)."""
    from bank_finetune import HOLDOUT, stratified_split
    from duetto.apps.bank.training import load_banking77

    texts, labels = load_banking77(DATA, "train")
    return {texts[i] for i in stratified_split(labels, HOLDOUT)[1]}


# ---------------------------------------------------------------- training


class PackBabble:
    """``Babble`` (six talkers, each at unit active level) over the pack's training clips."""

    def __init__(self, clips):
        from duetto.data.noise import Babble

        self.babble = Babble.__new__(Babble)
        self.babble.talkers, self.babble.pool_per_speaker = 6, BABBLE_PER_SPEAKER
        self.babble._by_speaker, self.babble._cache = {}, {}
        for c in clips:
            self.babble._by_speaker.setdefault(c["speaker"], []).append(_Utt(c["id"]))
            self.babble._cache[c["id"]] = (unopus(c["opus"], c["n"]) * c["scale"]).astype(
                np.float32
            )

    def noise(self, n, rng, exclude_speaker):
        return self.babble.noise(n, rng, exclude_speaker=exclude_speaker)


class _Utt:
    def __init__(self, uid: str):
        self.id = uid


class Batches:
    """Batch ``step`` of training, the same whatever the order or worker it is made in: a
    speechocean batch with probability SPEECHOCEAN_SHARE, else a bank batch; each item mixed
    by asr_finetune.augment (clean / babble 0-20 dB / white 5-20 dB)."""

    def __init__(self, data: dict, batch: int, seed: int, so_share: float):
        self.data, self.batch, self.seed, self.so_share = data, batch, seed, so_share
        self.babble = self.extractor = None

    def __len__(self):
        return 10**9

    def __getitem__(self, step: int):
        import torch

        from asr_finetune import augment, mel

        if self.extractor is None:
            self.extractor = feature_extractor()
            self.babble = PackBabble(self.data["babble"])
        rng = np.random.default_rng([self.seed, step])
        kind = "so" if rng.random() < self.so_share else "bank"
        pool, prefix = self.data[kind], self.data[f"{kind}_prefix"]
        feats, seqs = [], []
        for j in rng.choice(len(pool), self.batch, replace=False):
            item = pool[int(j)]
            audio = item.get("audio")
            if audio is None:
                audio = unopus(item["opus"], item["n"])
            mixed, _ = augment(audio, item["segments"], item.get("speaker", ""), self.babble, rng)
            feats.append(mel(mixed, self.extractor))
            seqs.append(prefix + item["tokens"])
        frames = max(f.shape[1] for f in feats)
        mels = np.zeros((len(feats), 80, frames), np.float32)
        for i, f in enumerate(feats):
            mels[i, :, : f.shape[1]] = f
            mels[i, :, f.shape[1] :] = f[:, -1:]  # more silence, as asr_finetune.batch_tensors
        n = max(len(s) for s in seqs) - 1
        eot = self.data["eot"]
        inp = np.full((len(seqs), n), eot, np.int64)
        tgt = np.full((len(seqs), n), eot, np.int64)
        mask = np.zeros((len(seqs), n), np.float32)
        for i, s in enumerate(seqs):
            inp[i, : len(s) - 1] = s[:-1]
            tgt[i, : len(s) - 1] = s[1:]
            mask[i, len(prefix) - 1 : len(s) - 1] = 1.0  # the text and the end only
        return kind, torch.tensor(mels), torch.tensor(inp), torch.tensor(tgt), torch.tensor(mask)


def feature_extractor():
    try:
        from faster_whisper.feature_extractor import FeatureExtractor
    except ImportError:  # the accelerator machine: a copy of faster-whisper's numpy extractor
        from fw_feature_extractor import FeatureExtractor
    return FeatureExtractor()


def train(args) -> int:
    """LoRA (rank ``--rank`` on ``--targets``) on the pack; adapters saved every
    ``--save-every`` steps as ``lora-<step>.npz`` under ``--out``. Runs on CUDA where there is one."""
    import pickle

    import torch

    from asr_finetune import build_model, lora_state, optimiser, read_model_bin, train_step

    device = "cuda" if torch.cuda.is_available() and not args.cpu else "cpu"
    torch.manual_seed(args.seed)
    if device == "cpu":
        torch.set_num_threads(1)
    else:
        torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = True
    data = {}
    for path in args.pack:  # a pack may travel in parts (bank, speechocean)
        data.update(pickle.loads(Path(path).read_bytes()))
    started = time.perf_counter()
    for kind in ("bank", "so"):
        for item in data[kind]:
            item["audio"] = unopus(item["opus"], item["n"])
    print(f"decoded pack in {time.perf_counter() - started:.0f} s: {len(data['bank'])} bank, "
          f"{len(data['so'])} speechocean", flush=True)  # fmt: skip
    _, variables, _ = read_model_bin(args.model_bin)
    model = build_model(variables, rank=args.rank, targets=args.targets).to(device)
    params = [p for p in model.parameters() if p.requires_grad]
    print(f"{device}: LoRA rank {args.rank} on {args.targets}: {sum(p.numel() for p in params)} "
          f"parameters", flush=True)  # fmt: skip
    opt, sched = optimiser(params, args.lr, args.steps)
    batches = Batches(data, args.batch, args.seed, args.so_share)
    loader = torch.utils.data.DataLoader(
        torch.utils.data.Subset(batches, range(1, args.steps + 1)), batch_size=None,
        num_workers=args.workers, prefetch_factor=4 if args.workers else None,
    )  # fmt: skip
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    log = (out / "log.jsonl").open("a")
    losses: dict[str, list] = {"bank": [], "so": []}
    started = time.perf_counter()
    for step, (kind, mels, inp, tgt, mask) in enumerate(loader, 1):
        tensors = (x.to(device) for x in (mels, inp, tgt, mask))
        losses[kind].append(train_step(model, opt, sched, *tensors))
        if step % 20 == 0:
            rate = (time.perf_counter() - started) / step
            row = {
                "step": step,
                **{k: round(float(np.mean(v[-10:])), 4) for k, v in losses.items() if v},
            }
            print(f"{row} ({rate:.2f} s/step)", flush=True)
            log.write(json.dumps(row) + "\n")
            log.flush()
        if step % args.save_every == 0 or step == args.steps:
            np.savez(out / f"lora-{step}.npz", **lora_state(model.cpu()))
            model.to(device)
    return 0


def export(args) -> int:
    """A run's adapters as shippable deltas (float16 ``b`` and ``a`` per adapted variable and
    rows, ``duetto.asr.adapters.merge_lora``'s keys), and the model folder merged from them
    exactly as ``asr.model = "bundled-bank"`` merges them: ``models/<name>``."""
    from asr_finetune import bundled_dir, export_deltas
    from duetto.asr.adapters import adapted_model

    deltas = {k: v.astype(np.float16) for k, v in export_deltas(Path(args.lora)).items()}
    out = CACHE / "deltas" / f"{args.name}.npz"
    out.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(out, **deltas)
    folder = adapted_model(bundled_dir(), out, CACHE / "models" / args.name)
    print(f"{out} ({out.stat().st_size / 1024:.0f} KiB, {len(deltas) // 2} deltas) -> {folder}")
    return 0


VOICE_GROUPS = {  # bench/bank_spoken.py's voices: trained on, trained on, never heard
    "Piper 0.85/1/1.2x": ("piper:bundled",),
    "espeak en-us": ("espeak:en-us",),
    "espeak en-gb-x-rp (unseen)": ("espeak:en-gb-x-rp",),
}


def score(args) -> int:
    """Intent accuracy (the shipped NLU reading the 5 best hypotheses, T = 0.5, as a call does)
    and WER of bench/bank_spoken.py transcripts, in all and per voice group."""
    from bank_spoken import cache_path, read_transcripts
    from bank_spoken_nlu import nbest_probs
    from duetto.apps.bank.nlu import BankNLU
    from duetto.apps.bank.training import DEFAULT_CACHE
    from duetto.data.textnorm import wer

    nlu, memo = BankNLU(), {}
    labels = list(nlu.intent_labels)
    sets = {
        t: read_transcripts(cache_path(DEFAULT_CACHE, args.split, args.per_intent, t))
        for t in args.tags
    }
    common = set.intersection(*({r["i"] for r in rows} for rows in sets.values()))
    print(f"{len(common)} {args.split} queries in every set; n-best T = {args.temperature:g}")
    print("| ASR (tag) | voices | n | clean | babble 5 dB | WER clean / babble |")
    print("| --- | --- | ---: | ---: | ---: | --- |")
    for tag, rows in sets.items():
        rows = sorted((r for r in rows if r["i"] in common), key=lambda r: r["i"])
        for group, voices in {"all": None, **VOICE_GROUPS}.items():
            part = [r for r in rows if voices is None or r["voice"] in voices]
            gold = np.array([labels.index(r["label"]) for r in part])
            acc = {
                c: float((nbest_probs(nlu, [r[f"{c}_nbest"] for r in part], args.temperature, memo).argmax(1) == gold).mean())
                for c in ("clean", "babble")
            }  # fmt: skip
            refs = [r["text"] for r in part]
            print(f"| {tag} | {group} | {len(part)} | {acc['clean']:.2%} | {acc['babble']:.2%} | "
                  f"{wer(refs, [r['clean'] for r in part]):.1%} / {wer(refs, [r['babble'] for r in part]):.1%} |",
                  flush=True)  # fmt: skip
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("speak")
    s.add_argument("--per-intent", type=int, default=24)
    pk = sub.add_parser("pack")
    pk.add_argument("--per-intent", type=int, default=24)
    pk.add_argument("--out", default=str(CACHE / "pack.pkl"))
    pk.add_argument(
        "--reuse", default=None, help="take the speechocean part and spoken queries from this pack"
    )
    t = sub.add_parser("train")
    t.add_argument("--pack", nargs="+", default=[str(CACHE / "pack.pkl")])
    t.add_argument("--model-bin", default=None, help="default: the bundled tiny.en's")
    t.add_argument("--out", default=str(CACHE / "runs" / "bank"))
    t.add_argument("--steps", type=int, default=400)
    t.add_argument("--batch", type=int, default=8)
    t.add_argument("--lr", type=float, default=1e-3)
    t.add_argument("--rank", type=int, default=8)
    t.add_argument("--targets", default="q,v")
    t.add_argument("--so-share", type=float, default=SPEECHOCEAN_SHARE)
    t.add_argument("--save-every", type=int, default=100)
    t.add_argument("--workers", type=int, default=0)
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--cpu", action="store_true")
    e = sub.add_parser("export")
    e.add_argument("--lora", required=True, help="a run's lora-<step>.npz")
    e.add_argument("--name", required=True)
    sc = sub.add_parser("score")
    sc.add_argument("--split", default="holdout")
    sc.add_argument("--per-intent", type=int, default=4)
    sc.add_argument("--tags", nargs="+", required=True)
    sc.add_argument("--temperature", type=float, default=0.5)
    args = parser.parse_args()
    if args.cmd == "train" and args.model_bin is None:
        from asr_finetune import bundled_dir

        args.model_bin = str(bundled_dir() / "model.bin")
    return {"speak": speak, "pack": pack, "train": train, "export": export, "score": score}[
        args.cmd
    ](args)


if __name__ == "__main__":
    sys.exit(main())
