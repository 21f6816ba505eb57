"""The per-layer report of an int8 model.

For each integer layer (convolution, depthwise, dense, add): the input and output scale and
zero point, the range of its weight scales, and two signal-to-quantization-noise ratios in dB,
SQNR = 10 log10(sum y^2 / sum (y - y_q)^2) against the float model's value y:

- ``added``: the layer alone: the float model's input to the layer quantized, run through the
  integer layer, its output dequantized (the error this layer adds);
- ``cumulative``: the int8 model's value at the layer's output (every error so far).

Layers suggested for ``keep_float``: those whose added SQNR is below 30 dB (about 5 bits
of signal), or more than 10 dB below the median of the model's layers, worst first.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ..kernels import quantize as qk
from ..runtime import quantized_steps as Q
from .int8_calibration import run_observed

__all__ = ["LayerReport", "QuantReport", "build_report", "sqnr_db"]

SUGGEST_BELOW_DB = 30.0
SUGGEST_MEDIAN_GAP_DB = 10.0


def sqnr_db(ref: np.ndarray, approx: np.ndarray) -> float:
    """10 log10(sum ref^2 / sum (ref - approx)^2) (inf when equal)."""
    ref = np.asarray(ref, np.float64)
    noise = float(np.sum((ref - np.asarray(approx, np.float64)) ** 2))
    signal = float(np.sum(ref ** 2))
    if noise == 0:
        return float("inf")
    return float(10 * np.log10(max(signal, 1e-300) / noise))


@dataclass
class LayerReport:
    """One integer layer's line of the report."""

    name: str
    kind: str
    in_scale: float
    in_zero: int
    out_scale: float | None
    out_zero: int | None
    weight_scale: tuple[float, float] | None
    sqnr_added_db: float
    sqnr_cumulative_db: float


@dataclass
class QuantReport:
    """Every integer layer, the model output's SQNR and the layers worth keeping in float."""

    layers: list[LayerReport]
    output_sqnr_db: float
    suggestions: list[str]

    def __str__(self) -> str:
        head = (f"{'layer':<28} {'kind':<9} {'in scale':>10} {'zp':>4} {'out scale':>10} "
                f"{'zp':>4} {'w scale (min..max)':>21} {'SQNR added':>10} {'cumul.':>7}")
        lines = [head, "-" * len(head)]
        for r in self.layers:
            out = ("float32", "") if r.out_scale is None else (f"{r.out_scale:.3g}",
                                                               str(r.out_zero))
            ws = "" if r.weight_scale is None else \
                f"{r.weight_scale[0]:.2e}..{r.weight_scale[1]:.2e}"
            lines.append(f"{r.name[:28]:<28} {r.kind:<9} {r.in_scale:>10.3g} {r.in_zero:>4} "
                         f"{out[0]:>10} {out[1]:>4} {ws:>21} {r.sqnr_added_db:>8.1f}dB "
                         f"{r.sqnr_cumulative_db:>5.1f}dB")
        lines.append(f"model output SQNR: {self.output_sqnr_db:.1f} dB")
        lines.append("keep in float to recover accuracy: " +
                     (", ".join(self.suggestions) if self.suggestions else "none needed"))
        return "\n".join(lines)


def _record(plan: Any, x: np.ndarray) -> tuple[dict[int, np.ndarray], Any]:
    vals: dict[int, np.ndarray] = {}

    def keep(slot: int, v: np.ndarray) -> None:
        vals[slot] = v.copy()

    out = run_observed(plan, x, keep)
    return vals, out


def _suggest(rows: list[LayerReport]) -> list[str]:
    finite = [r.sqnr_added_db for r in rows if np.isfinite(r.sqnr_added_db)]
    if not finite:
        return []
    median = float(np.median(finite))
    bad = [r for r in rows if r.sqnr_added_db < SUGGEST_BELOW_DB
           or r.sqnr_added_db < median - SUGGEST_MEDIAN_GAP_DB]
    return [r.name for r in sorted(bad, key=lambda r: r.sqnr_added_db)]


def build_report(qmodel: Any, x: np.ndarray) -> QuantReport:
    """The report of ``qmodel`` (a QuantizedModel) on samples ``x`` (module docstring)."""
    fvals, fout = _record(qmodel.float_plan, x)
    qvals, qout = _record(qmodel.plan, x)
    g = qmodel.graph
    source = {nd.outs[0]: nd.args for nd in g.nodes if isinstance(nd.step, Q.Quantize)}
    rows = []
    for nd in g.nodes:
        if not isinstance(nd.step, (Q.QuantizedConv, Q.QuantizedAdd)):
            continue
        args = nd.args if isinstance(nd.args, list) else [nd.args]
        codes = [qk.quantize(fvals[source.get(a, a)], *g.slot_q[a], qmodel.dtype) for a in args]
        y = nd.step.build((False,) * len(args))(codes if len(args) > 1 else codes[0])
        out = nd.outs[0]
        qy = g.slot_q.get(out)
        y_f = y if qy is None else qk.dequantize(y, *qy)
        y_c = qvals[out] if qy is None else qk.dequantize(qvals[out], *qy)
        qx = g.slot_q[args[0]]
        if isinstance(nd.step, Q.QuantizedConv):
            name, kind = nd.step.layer.name, nd.step.kind
            ws = nd.step.params.mult.astype(np.float64) * (1.0 if qy is None else qy[0]) / qx[0]
            wrange = (float(ws.min()), float(ws.max()))
        else:
            name, kind, wrange = f"add -> slot {out}", "add", None
        rows.append(LayerReport(name, kind, qx[0], qx[1], None if qy is None else qy[0],
                                None if qy is None else qy[1], wrange,
                                sqnr_db(fvals[out], y_f), sqnr_db(fvals[out], y_c)))
    return QuantReport(rows, sqnr_db(fout, qout), _suggest(rows))
