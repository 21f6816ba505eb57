"""Post-training static int8 quantization: ``quantize(model, calibration_data)`` gives a
:class:`QuantizedModel` that runs integer kernels.

1. The model is compiled into its float inference plan (batch norm folded into the
   convolution or dense layer before it, ReLU-type activations fused: :mod:`cnnkit.runtime`).
2. The plan runs on the calibration batches; every value's range comes from the chosen
   method (:mod:`cnnkit.kernels.calibrate`: ``minmax``, ``percentile``, ``entropy``, ``mse``),
   and gives its scale and zero point (uint8 or int8 codes, the real 0 exact).
3. Weights are quantized symmetric per output channel (or per tensor) to codes -63 .. 63
   (``weight_bits=7``, the default: the AVX2 kernel then multiplies bytes with vpmaddubsw,
   which cannot saturate) or -127 .. 127 (``weight_bits=8``), biases to int32
   at scale sx * sw, and the plan's steps are rewritten with integer steps
   (:mod:`.int8_graph`); layers named in ``keep_float`` stay in float.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from ..kernels import quantize as qk
from ..kernels.calibrate import METHODS
from .int8_calibration import batches_of, calibrate
from .int8_graph import (
    Int8Graph,
    IntWeights,
    build_int8_nodes,
    int8_float_plan,
    shared_concat_ranges,
    weights_of_step,
)
from .int8_report import QuantReport, build_report

__all__ = ["QuantizedModel", "quantize"]

ACTIVATIONS = {"uint8": np.dtype(np.uint8), "int8": np.dtype(np.int8)}


class QuantizedModel:
    """An int8 model: ``predict(x)`` / ``model(x)`` run the integer plan, ``save(path)``
    writes a ``.cnnkit`` file with int8 weights, ``report()`` gives each layer's scales,
    zero points and added error (SQNR).

    Built by :func:`quantize`, or read back with :meth:`load`."""

    def __init__(self, model: Any, ranges: dict[int, tuple[float, float]],
                 options: dict[str, Any],
                 weights: Callable[[int, Any, str], IntWeights] | None = None):
        self.model = model
        self.options = dict(options)
        self.dtype = ACTIVATIONS[options["activations"]]
        self.float_plan = int8_float_plan(model)
        self.ranges = shared_concat_ranges(self.float_plan.node_list(), ranges)
        per_channel = bool(options["per_channel"])
        qmax = qk.weight_qmax(int(options.get("weight_bits", 8)))

        def from_layers(i: int, step: Any, kind: str) -> IntWeights:
            return weights_of_step(step, kind, per_channel, qmax)

        graph = self.float_plan.graph
        assert graph is not None
        self.graph: Int8Graph = build_int8_nodes(
            self.float_plan.node_list(), self.float_plan.n_slots, set(graph.outputs),
            self._params, self.dtype, set(options.get("keep_float", ())),
            weights or from_layers)
        self.plan = self.float_plan.with_nodes(self.graph.nodes, self.graph.n_slots)
        self.calibration_sample: np.ndarray | None = None

    def _params(self, slot: int) -> tuple[float, int]:
        if slot not in self.ranges:
            raise ValueError(f"value slot {slot} was not seen during calibration (it is not a "
                             f"float array); keep the layer that reads it in float")
        lo, hi = self.ranges[slot]
        return qk.choose_qparams(lo, hi, self.dtype)

    @property
    def name(self) -> str:
        """The float model's name."""
        return str(self.model.name)

    @property
    def input_shape(self) -> Any:
        """The float model's input shape, (None, H, W, C) for an image model."""
        return self.model.input_shape

    @property
    def output_shape(self) -> Any:
        """The float model's output shape."""
        return self.model.output_shape

    @property
    def class_names(self) -> Any:
        """The class names saved with the float model, if any."""
        return getattr(self.model, "class_names", None)

    @property
    def int_layers(self) -> list[str]:
        """Names of the layers that run as integer kernels."""
        steps = self.float_plan.steps
        return [steps[i].step.layer.name for i in sorted(self.graph.weights)]

    def __call__(self, x: Any) -> Any:
        return self.plan(x)

    def predict(self, x: Any, batch_size: int = 256) -> Any:
        """Outputs for ``x`` computed in batches of ``batch_size`` (float32)."""
        return self.plan.run_batched(x, batch_size)

    def report(self, x: Any = None) -> QuantReport:
        """Per integer layer: input and output scale / zero point, weight scales, the SQNR of
        the layer alone (float input quantized, its output against the float output) and of
        the whole int8 model up to it; layers worth keeping in float. ``x``: the samples
        (default: the first calibration batch)."""
        sample = self.calibration_sample if x is None else np.asarray(x)
        if sample is None:
            raise ValueError("report() needs samples: pass x (this model was loaded from a "
                             "file and kept no calibration batch)")
        return build_report(self, sample)

    def save(self, path: Any) -> None:
        """Write the model as a ``.cnnkit`` file with int8 weights (:mod:`.int8_file`)."""
        from .int8_file import save_quantized

        save_quantized(self, path)

    def export(self, path: Any, format: str = "onnx", **options: Any) -> Any:  # noqa: A002
        """Write the int8 model for another runtime: ``format="onnx"`` (``opset`` 13 to 23,
        default 17, ``layout``, ``dynamic_batch``, ``int8_format`` "integer" (ConvInteger)
        or "qdq" (QuantizeLinear / DequantizeLinear pairs);
        :func:`cnnkit.io.onnx_export.export_onnx`), which ONNX Runtime computes to the same
        integers."""
        from .. import exporters

        return exporters.get(format)(self, path, **options)

    @classmethod
    def load(cls, path: Any) -> QuantizedModel:
        """Read a file written by :meth:`save`."""
        from .int8_file import load_quantized

        return load_quantized(path, cls)


def _check_options(method: str, percentile: float, activations: str,
                   keep_float: Sequence[str], model: Any, weight_bits: Any = 8) -> None:
    if isinstance(weight_bits, bool) or weight_bits not in (7, 8):
        raise ValueError(f"weight_bits must be 7 or 8, got {weight_bits!r}")
    if method not in METHODS:
        raise ValueError(f"method must be one of {', '.join(METHODS)}, got {method!r}")
    if not 0 < float(percentile) <= 100:
        raise ValueError(f"percentile must be in (0, 100], got {percentile}")
    if activations not in ACTIVATIONS:
        raise ValueError(f"activations must be 'uint8' or 'int8', got {activations!r}")
    if isinstance(keep_float, str):
        raise TypeError("keep_float must be a list of layer names, got a string")
    names = {layer.name for layer in getattr(model, "layers", [])}
    unknown = [n for n in keep_float if n not in names]
    if unknown:
        raise ValueError(f"keep_float names layers the model does not have: {unknown}")
    if getattr(model, "inference_graph", None) is None or not getattr(model, "built", True):
        raise TypeError(f"quantize needs a built Sequential or functional model, got "
                        f"{type(model).__name__}")


def quantize(model: Any, calibration_data: Any, method: str = "percentile",
             percentile: float = 99.99, per_channel: bool = True, activations: str = "uint8",
             keep_float: Sequence[str] = (), batch_size: int = 128,
             progress: Callable[[int, int], None] | None = None,
             weight_bits: int = 7) -> QuantizedModel:
    """Static int8 quantization of a built model (module docstring).

    Args:
        model: a built Sequential or functional model (float32).
        calibration_data: samples (N, ...) or an iterable of batches (or (x, y) pairs),
            preprocessed as the model's inputs; a few hundred samples are enough.
        method: "minmax", "percentile", "entropy" (KL, as TensorRT) or "mse".
        percentile: the percentile of |x| the "percentile" method keeps.
        per_channel: one weight scale per output channel (else one per tensor).
        activations: "uint8" or "int8" codes (with zero points) for activations.
        keep_float: names of layers to keep in float32.
        progress: called as progress(done, total) after each calibration batch.
        weight_bits: 7 (codes -63 .. 63, the default) or 8 (-127 .. 127). With 7 bits the
            AVX2 kernel multiplies bytes by vpmaddubsw without saturating (~1.3x faster on
            CPUs without VNNI; the activations keep all 8 bits).
    """
    _check_options(method, percentile, activations, keep_float, model, weight_bits)
    batches = batches_of(calibration_data, batch_size)
    options = {"method": method, "percentile": float(percentile),
               "per_channel": bool(per_channel), "activations": activations,
               "keep_float": list(keep_float), "weight_bits": int(weight_bits)}
    plan = int8_float_plan(model)
    if plan.graph is None or plan.graph.n_inputs != 1:
        raise ValueError("quantize supports models with one input")
    passes = 1 if method == "minmax" else 2
    total = passes * len(batches)
    report = None if progress is None else (lambda done: progress(done, total))
    ranges = calibrate(plan, batches, method, float(percentile), report)
    q = QuantizedModel(model, ranges, options)
    q.calibration_sample = batches[0]
    return q
