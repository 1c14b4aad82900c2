"""ONNX graphs whose large tensors live in shared weight files (duetto.models.onnx_session)."""

import json

import numpy as np
import pytest

from duetto.errors import ModelNotFoundError
from duetto.models import TENSORS_SUFFIX, onnx_session, onnx_weights_file, split_onnx_tensors

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")


def _graph(path, weights: dict[str, np.ndarray]):
    """y = relu(x @ W1) @ W2 + b: two large tensors and a small one."""
    from onnx import TensorProto, helper, numpy_helper

    nodes = [
        helper.make_node("MatMul", ["x", "W1"], ["h"]),
        helper.make_node("Relu", ["h"], ["r"]),
        helper.make_node("MatMul", ["r", "W2"], ["m"]),
        helper.make_node("Add", ["m", "b"], ["y"]),
    ]
    inits = [numpy_helper.from_array(a, name) for name, a in weights.items()]
    graph = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 64])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 32])],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, str(path))


def _run(session, x):
    return session.run(None, {"x": x})[0]


def test_split_graphs_share_tensors_and_give_the_same_outputs(tmp_path):
    rng = np.random.default_rng(0)
    shared = rng.standard_normal((64, 64)).astype(np.float32)
    base = {"W1": shared, "W2": rng.standard_normal((64, 32)).astype(np.float32),
            "b": np.ones(32, np.float32)}  # fmt: skip
    tuned = dict(base, W2=rng.standard_normal((64, 32)).astype(np.float32))
    a, b = tmp_path / "base" / "a.onnx", tmp_path / "tuned" / "b.onnx"
    a.parent.mkdir()
    b.parent.mkdir()
    _graph(a, base)
    _graph(b, tuned)
    x = rng.standard_normal((1, 64)).astype(np.float32)
    want_a = _run(ort.InferenceSession(str(a)), x)
    want_b = _run(ort.InferenceSession(str(b)), x)

    split_onnx_tensors(a)
    split_onnx_tensors(b, shared=a)
    assert a.stat().st_size < 2000 and b.stat().st_size < 2000  # the tensors left the graphs
    with np.load(onnx_weights_file(b)) as z:
        assert len(z.files) == 1  # only the tuned W2; W1 comes from a's file
    spec = json.loads(b.with_name(b.name + TENSORS_SUFFIX).read_text())
    assert spec["files"][0] == "../base/a.weights.npz"
    np.testing.assert_array_equal(_run(onnx_session(a, ort.SessionOptions()), x), want_a)
    np.testing.assert_array_equal(_run(onnx_session(b, ort.SessionOptions()), x), want_b)

    onnx_weights_file(a).unlink()  # the shared file lost: a clear error, not an ORT traceback
    with pytest.raises(ModelNotFoundError, match="weights of b.onnx missing"):
        onnx_session(b, ort.SessionOptions())


def test_a_self_contained_graph_loads_as_it_is(tmp_path):
    path = tmp_path / "plain.onnx"
    weights = {"W1": np.eye(64, dtype=np.float32), "W2": np.ones((64, 32), np.float32),
               "b": np.zeros(32, np.float32)}  # fmt: skip
    _graph(path, weights)
    x = np.full((1, 64), 0.5, np.float32)
    np.testing.assert_allclose(_run(onnx_session(path, ort.SessionOptions()), x), 32.0)
    with pytest.raises(ModelNotFoundError):
        onnx_session(tmp_path / "none.onnx", ort.SessionOptions())
