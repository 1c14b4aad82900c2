"""Whisper encoder states from a middle layer: a CTranslate2 model cut after its first k layers.

CTranslate2's ``encode()`` returns only the last encoder layer, which specialises towards the
decoder; the middle layers of a speech encoder carry more phonetic detail. A copy of the model
whose ``model.bin`` keeps only the first k encoder layers (CTranslate2 counts the layers it
finds) returns layer k's output, through the encoder's final layer norm, at k/n of the cost.
The copy is built once into the user's cache from the installed model; nothing is downloaded.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

_LAYER = re.compile(r"^encoder/layer_(\d+)/")


def _first_layers(variables: dict, layers: int) -> tuple[dict, int]:
    """``variables`` without the encoder layers from ``layers`` on, and how many encoder layers
    there were."""
    index = {name: int(m.group(1)) for name in variables if (m := _LAYER.match(name))}
    total = max(index.values(), default=-1) + 1
    if not 0 < layers <= total:
        raise ValueError(f"the model has {total} encoder layers; cannot keep {layers}")
    kept = {name: value for name, value in variables.items() if index.get(name, -1) < layers}
    return kept, total


def truncate_model_bin(source: Path, dest: Path, layers: int) -> int:
    """Copy CTranslate2 ``model.bin`` ``source`` to ``dest`` without the encoder layers from
    ``layers`` on; returns how many encoder layers the source had."""
    from duetto.asr.adapters import read_model_bin, write_model_bin

    header, variables, aliases = read_model_bin(source)
    kept, total = _first_layers(variables, layers)
    write_model_bin(dest, header, kept, aliases)
    return total


def truncated_model(source: str | Path, layers: int, cache: str | Path | None = None) -> Path:
    """A CTranslate2 Whisper folder equal to ``source`` with only its first ``layers`` encoder
    layers, built once under ``cache`` (default: duetto's cache, ``whisper-layers/``)."""
    from duetto.asr.adapters import derived_model
    from duetto.models import cache_dir

    source = Path(source)
    root = Path(cache) if cache is not None else cache_dir() / "whisper-layers"
    tag = hashlib.sha1(str(source.resolve()).encode()).hexdigest()[:8]
    folder = root / f"{source.name}-{tag}-enc{layers}"
    return derived_model(source, folder, lambda variables: _first_layers(variables, layers)[0])
