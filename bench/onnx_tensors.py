"""Move an ONNX file's large tensors into a weight file (``.npz``) that other graphs can share.

The int8 MiniLM of the end-of-turn text branch (``fusion/data/minilm-l6-int8.onnx``) and the bank's
fine-tuned copy (``apps/bank/data/bank-minilm-int8.onnx``) differ only in the fine-tuned top layer
and the intent head, so the bank graph keeps only those (1.8 MB) and takes the rest from the
first one's weight file. Tensors are keyed by a hash of their content; the graph names each key
(as its external-data location, so the graph's own hash still changes with its weights) and
``<graph>.tensors.json`` lists the keys and weight files that :func:`duetto.models.onnx_session`
reads back. Needs the ``onnx`` package (``duetto[ml]``); run time needs only onnxruntime.

    .venv/bin/python bench/onnx_tensors.py src/duetto/fusion/data/minilm-l6-int8.onnx
    .venv/bin/python bench/onnx_tensors.py src/duetto/apps/bank/data/bank-minilm-int8.onnx \
        --shared src/duetto/fusion/data/minilm-l6-int8.onnx
"""

from __future__ import annotations

import argparse
from pathlib import Path

from duetto.models import split_onnx_tensors


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("graph", type=Path)
    parser.add_argument("--shared", type=Path, help="a graph split before whose tensors to reuse")
    args = parser.parse_args()
    split_onnx_tensors(args.graph, args.shared)


if __name__ == "__main__":
    main()
