"""Quantization-aware training: ``prepare_qat(model, calibration_data)`` makes the model
train through the int8 model's rounding, then ``convert()`` gives the QuantizedModel.

Post-training quantization runs first (calibration, the int8 graph). Then, in training
calls (``fit``, ``model(x, training=True)``; inference keeps the float plan):

- each integer layer (convolution, depthwise, dense) uses its kernel fake-quantized
  symmetric per output channel to the int8 model's codes (``weight_bits``;
  ``ops.fake_quantize_weights``). With a batch norm after the layer this is exact too:
  per-channel symmetric quantization commutes with the folded per-channel scale
  (q(W s) = q(W) for s > 0, rint(-v) = -rint(v) for s < 0), so the codes are those of
  the folded kernel the int8 graph uses;
- each value the int8 graph holds as codes gets fake-quantized at the calibrated scale and
  zero point, on the output of the layer that produces it (after a fused batch norm and
  ReLU: the ReLU layer's output), or for a model input, on the input of its readers.

Gradients pass straight through the rounding inside the range (``ops.fake_quantize``). The
ranges stay those of the calibration; ``convert()`` rebuilds the integer model from the
fine-tuned weights with them. The hooks are instance attributes (``layer.call``), removed by
``convert()`` or ``remove()``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .. import ops
from ..kernels import quantize as qk
from ..runtime import quantized_steps as Q
from .int8_model import QuantizedModel, quantize

__all__ = ["QATModel", "prepare_qat"]


def _producers(plan: Any) -> dict[int, Any]:
    """value slot -> the layer whose call writes it."""
    out = {}
    for node in plan.graph.nodes:
        for slot in node.outs:
            out[slot] = node.layer
    return out


def _fq_slots(q: QuantizedModel) -> dict[int, tuple[float, int]]:
    """The float plan's value slots that the int8 graph holds as codes, with their (scale,
    zero point): the outputs of integer layers and adds, and the inputs of Quantize steps."""
    g, n = q.graph, q.float_plan.n_slots
    slots = {s: p for s, p in g.slot_q.items() if s < n}
    for nd in g.nodes:
        if isinstance(nd.step, Q.Quantize):
            slots[nd.args] = (nd.step.scale, nd.step.zero)
    return slots


class QATModel:
    """The handle of a model prepared for quantization-aware training (module docstring):
    train ``model`` as usual, then ``convert()``."""

    def __init__(self, ptq: QuantizedModel):
        self.model = ptq.model
        self.ranges, self.options = ptq.ranges, ptq.options
        self._hooked: list[Any] = []
        axis_of = {"conv": -1, "dense": -1, "depthwise": -2}
        per_channel = bool(self.options["per_channel"])
        self.weight_qmax = qk.weight_qmax(int(self.options.get("weight_bits", 8)))
        weight_axis = {}
        steps = ptq.float_plan.steps
        for i, kind in ptq.graph.kinds.items():
            if i in ptq.graph.weights:
                weight_axis[id(steps[i].step.layer)] = (steps[i].step.layer,
                                                        axis_of[kind] if per_channel else None)
        producers = _producers(ptq.float_plan)
        qmin, qmax = qk.qrange(ptq.dtype)
        acts: dict[int, tuple[Any, tuple[float, int]]] = {}
        inputs: dict[int, tuple[Any, tuple[float, int]]] = {}
        for slot, p in _fq_slots(ptq).items():
            if slot in producers:
                acts[id(producers[slot])] = (producers[slot], p)
            else:  # a model input: its readers quantize what they read
                for node in ptq.float_plan.graph.nodes:
                    if node.args == slot:
                        inputs[id(node.layer)] = (node.layer, p)
        for key in set(weight_axis) | set(acts) | set(inputs):
            layer = (weight_axis.get(key) or acts.get(key) or inputs[key])[0]
            self._hook(layer, weight_axis[key][1] if key in weight_axis else False,
                       acts[key][1] if key in acts else None,
                       inputs[key][1] if key in inputs else None, (qmin, qmax))

    def _hook(self, layer: Any, axis: Any, act: tuple[float, int] | None,
              inp: tuple[float, int] | None, limits: tuple[int, int]) -> None:
        original: Callable = layer.call

        def call(inputs: Any, training: bool = False, **kw: Any) -> Any:
            if inp is not None:
                inputs = ops.fake_quantize(inputs, inp[0], inp[1], *limits)
            if axis is False:
                y = original(inputs, training=training, **kw)
            else:
                kernel = layer.kernel
                layer.kernel = ops.fake_quantize_weights(kernel, axis, self.weight_qmax)
                try:
                    y = original(inputs, training=training, **kw)
                finally:
                    layer.kernel = kernel
            return y if act is None else ops.fake_quantize(y, act[0], act[1], *limits)

        layer.call = call
        self._hooked.append(layer)

    def remove(self) -> None:
        """Take the training hooks off the model's layers."""
        for layer in self._hooked:
            layer.__dict__.pop("call", None)
        self._hooked = []

    def convert(self) -> QuantizedModel:
        """The int8 model of the fine-tuned weights (at the calibrated ranges); the hooks are
        removed."""
        self.remove()
        return QuantizedModel(self.model, self.ranges, self.options)


def prepare_qat(model: Any, calibration_data: Any, **options: Any) -> QATModel:
    """Calibrate and quantize ``model`` (``options`` as :func:`quantize`), then hook its
    layers for quantization-aware training (module docstring)."""
    return QATModel(quantize(model, calibration_data, **options))
