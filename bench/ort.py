"""ONNX Runtime beside cnnkit and PyTorch for the inference workloads: the cnnkit model
exported with cnnkit's own exporter (:func:`cnnkit.io.onnx_export.to_onnx`, NCHW, batch norm
folded), or -- where that raises -- the PyTorch twin through ``torch.onnx.export(...,
dynamo=False)``; run by ``onnxruntime.InferenceSession`` on the CPU provider with as many
intra-op threads as PyTorch gets."""

from __future__ import annotations

import io
import os
from collections.abc import Callable
from typing import Any

import numpy as np

from . import workloads as W


def available() -> bool:
    """Whether onnxruntime and onnx are importable (the ``onnx`` extra)."""
    try:
        import onnx  # noqa: F401
        import onnxruntime  # noqa: F401
    except ImportError:
        return False
    return True


def _model_bytes(case: W.Case) -> tuple[bytes, str]:
    """(serialised ONNX model, how it was made): cnnkit's exporter first, the twin second."""
    from cnnkit.io.onnx_export import OnnxExportError, to_onnx

    try:
        return to_onnx(case.ck).SerializeToString(), "cnnkit exporter"
    except (OnnxExportError, ValueError, TypeError) as e:
        reason = f"{type(e).__name__}: {e}"
    import torch

    buf = io.BytesIO()
    case.pt.eval()
    torch.onnx.export(case.pt, (case.xt,), buf, dynamo=False, input_names=["input"],
                      output_names=["logits"], dynamic_axes={"input": {0: "N"}})
    return buf.getvalue(), f"torch.onnx.export of the twin (cnnkit exporter: {reason[:80]})"


def ort_infer(case: W.Case) -> tuple[Callable[[], Any], dict[str, Any]]:
    """(the timed ORT call on the workload's NCHW batch, {source, logits max abs diff against
    PyTorch in eval mode, threads})."""
    import onnxruntime as ort
    import torch

    data, source = _model_bytes(case)
    opts = ort.SessionOptions()
    threads = int(os.environ.get("BENCH_TORCH_THREADS") or os.cpu_count() or 1)
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    sess = ort.InferenceSession(data, opts, providers=["CPUExecutionProvider"])
    name = sess.get_inputs()[0].name
    feed = {name: np.ascontiguousarray(case.xt.numpy())}
    case.pt.eval()
    with torch.inference_mode():
        ref = case.pt(case.xt).numpy()
    diff = float(np.abs(sess.run(None, feed)[0] - ref).max())
    return (lambda: sess.run(None, feed)), {"source": source, "diff": diff, "threads": threads}
