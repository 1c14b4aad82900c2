"""Adapted versions of the bundled Whisper models: low-rank weight deltas shipped as a small
``.npz`` and merged into a CTranslate2 model folder in the cache on first use.

The bank model (``asr.model = "bundled-bank"``) is tiny.en with LoRA adapters (rank 8 on the
attention queries and values) trained on BANKING77 *train* queries spoken by the project's TTS,
clean and mixed with babble or white noise, after the bank's ASR prompt, with speechocean762
train speech mixed in (bench/bank_asr_finetune.py; docs/bank.md). The noise-robust model
(``asr.model = "bundled-robust"``) has the same kind of adapters trained by self-distillation:
on speechocean762 train audio mixed with babble or white noise, the targets were the bundled
model's own transcripts of the clean recordings (bench/asr_distill.py; docs/robustness.md).
``"bundled-base-robust"`` is the bundled multilingual Whisper base taught the same way, the
second model of ``asr.noisy_second_model``.
The merged models (tiny.en 75 MB, base 142 MB) are never shipped: the deltas are added to the
bundled weights in float32 and stored back in the bundled dtype, so the same inputs always give
the same model file.
"""

from __future__ import annotations

import hashlib
import shutil
import struct
from pathlib import Path

import numpy as np

BANK_MODEL = "bundled-bank"
BANK_DELTAS = Path(__file__).with_name("bank-tiny-en-lora.npz")
# tiny.en taught by itself to write on noisy audio what it writes on the clean recording
# (bench/asr_distill.py; docs/robustness.md): no human transcript was a target.
ROBUST_MODEL = "bundled-robust"
ROBUST_DELTAS = Path(__file__).with_name("robust-tiny-en-lora.npz")
# Whisper base taught the same way (bench/asr_distill.py --base): the second model whose
# decodings of a noisy turn join tiny.en's (asr.noisy_second_model).
BASE_ROBUST_MODEL = "bundled-base-robust"
BASE_ROBUST_DELTAS = Path(__file__).with_name("robust-base-lora.npz")
ADAPTED = {
    BANK_MODEL: BANK_DELTAS,
    ROBUST_MODEL: ROBUST_DELTAS,
    BASE_ROBUST_MODEL: BASE_ROBUST_DELTAS,
}
# The bundled model each adapted one is merged into ("bundled", tiny.en, where not named).
ADAPTED_FROM = {BASE_ROBUST_MODEL: "bundled-base"}
# The files of a CTranslate2 Whisper folder besides model.bin (copied as they are).
MODEL_FILES = (
    "config.json",
    "tokenizer.json",
    "vocabulary.txt",
    "vocabulary.json",
    "preprocessor_config.json",
)

# Type ids in CTranslate2's order (include/ctranslate2/types.h); bfloat16 (5) is not read here.
_DTYPES = (np.float32, np.int8, np.int16, np.int32, np.float16)


def read_model_bin(path: str | Path) -> tuple[dict, dict[str, np.ndarray], list[tuple[str, str]]]:
    """CTranslate2's ``model.bin`` as (header, variables by name, aliases)."""
    blob = Path(path).read_bytes()
    pos = 0

    def take(fmt: str):
        nonlocal pos
        (value,) = struct.unpack_from(fmt, blob, pos)
        pos += struct.calcsize(fmt)
        return value

    def string() -> str:
        nonlocal pos
        n = take("H")
        text = blob[pos : pos + n - 1].decode()
        pos += n
        return text

    header = {"version": take("I"), "name": string(), "revision": take("I")}
    variables = {}
    for _ in range(take("I")):
        name = string()
        shape = [take("I") for _ in range(take("B"))]
        dtype = np.dtype(_DTYPES[take("B")])
        nbytes = take("I")
        variables[name] = np.frombuffer(blob, dtype, nbytes // dtype.itemsize, pos).reshape(shape)
        pos += nbytes
    aliases = [(string(), string()) for _ in range(take("I"))]
    return header, variables, aliases


def write_model_bin(
    path: str | Path, header: dict, variables: dict[str, np.ndarray], aliases: list
) -> None:
    """The inverse of :func:`read_model_bin` (a round trip gives the same bytes)."""
    type_ids = [np.dtype(d) for d in _DTYPES]
    with open(path, "wb") as out:

        def string(text: str) -> None:
            out.write(struct.pack("H", len(text) + 1) + text.encode() + b"\0")

        out.write(struct.pack("I", header["version"]))
        string(header["name"])
        out.write(struct.pack("I", header["revision"]))
        out.write(struct.pack("I", len(variables)))
        for name, value in variables.items():
            value = np.asarray(value, order="C")  # (ascontiguousarray would make scalars 1-d)
            string(name)
            out.write(struct.pack("B", value.ndim))
            for dim in value.shape:
                out.write(struct.pack("I", dim))
            out.write(struct.pack("B", type_ids.index(value.dtype)))
            out.write(struct.pack("I", value.nbytes))
            out.write(value.tobytes())
        out.write(struct.pack("I", len(aliases)))
        for alias, name in aliases:
            string(alias)
            string(name)


def merge_lora(variables: dict[str, np.ndarray], deltas: dict[str, np.ndarray]) -> dict:
    """``variables`` with low-rank deltas added. ``deltas`` keys are ``"<variable>:<first
    row>:<end row>:a"`` and ``...:b``: rows ``first:end`` of the variable gain ``b @ a``
    (computed in float32, stored back in the variable's dtype)."""
    out = dict(variables)
    for key in sorted(k for k in deltas if k.endswith(":a")):
        name, first, end, _ = key.rsplit(":", 3)
        weight = out[name].astype(np.float32)  # a copy: the loaded arrays are read-only
        b, a = deltas[key[:-1] + "b"].astype(np.float32), deltas[key].astype(np.float32)
        weight[int(first) : int(end)] += b @ a
        out[name] = weight.astype(variables[name].dtype)
    return out


def derived_model(base: str | Path, folder: str | Path, transform) -> Path:
    """A CTranslate2 model folder ``folder``: the model in ``base`` with its ``model.bin``
    variables passed through ``transform`` (a dict of arrays in, a dict out) and its other
    files copied. Written once (atomically, so a crash leaves no half model); later calls
    return it as it is."""
    folder = Path(folder)
    if (folder / "model.bin").is_file():
        return folder
    base = Path(base)
    header, variables, aliases = read_model_bin(base / "model.bin")
    variables = transform(variables)
    tmp = folder.with_name(folder.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    for name in MODEL_FILES:
        if (base / name).is_file():
            shutil.copy(base / name, tmp / name)
    write_model_bin(tmp / "model.bin", header, variables, aliases)
    shutil.rmtree(folder, ignore_errors=True)
    tmp.rename(folder)
    return folder


def adapted_model(base: str | Path, deltas: str | Path, folder: str | Path) -> Path:
    """A CTranslate2 model folder ``folder``: the model in ``base`` with ``deltas`` (an
    ``.npz`` of :func:`merge_lora` deltas) merged, made once by :func:`derived_model`."""

    def merged(variables: dict) -> dict:
        with np.load(deltas) as f:
            return merge_lora(variables, {k: f[k] for k in f.files})

    return derived_model(base, folder, merged)


def bundled_adapted(name: str) -> Path:
    """An adapted model of :data:`ADAPTED` (``asr.model = "bundled-bank"``, ``"bundled-robust"``
    or ``"bundled-base-robust"``), made in the cache from its bundled model on first use; the
    folder is named by the deltas' digest, so new deltas make a new model."""
    from duetto.models import BUNDLED, cache_dir, whisper_model

    deltas = ADAPTED[name]
    digest = hashlib.sha256(deltas.read_bytes()).hexdigest()[:12]
    base = ADAPTED_FROM.get(name, BUNDLED)
    prefix = "whisper-tiny.en" if base == BUNDLED else "whisper"
    folder = cache_dir() / f"{prefix}-{name.removeprefix('bundled-')}-{digest}"
    return adapted_model(whisper_model(base), deltas, folder)
