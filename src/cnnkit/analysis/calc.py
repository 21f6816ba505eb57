"""Calculators that show their working, in the seeds' notation.

Every function returns a :class:`Calculation`: the number (or shape), the steps that lead to
it, e.g. ``(224 - 7 + 2*3) / 2 + 1 = 112.5 -> floor -> 112``, and warnings (pixels that no
window reads). A configuration that gives no output raises :class:`InvalidConfiguration` (a
ValueError) whose message holds the steps.

Formulas, per spatial axis, input W, kernel K, stride S, padding P per side, dilation D:

- effective kernel ``K' = D*(K - 1) + 1``
- convolution / pooling: ``out = floor((W - K' + 2P) / S) + 1`` (``ceil`` with ceil mode);
  ``same``: ``out = ceil(W / S)``, padding ``max((out - 1)*S + K' - W, 0)``, odd cell at the end
- transposed convolution: ``out = (W - 1)*S - 2P + K' + output_padding``
- parameters: convolution ``(K*K*C_in/groups + 1) * C_out``, dense ``(N_in + 1) * N_out``
- multiply-adds: ``H_out*W_out * K*K*C_in/groups * C_out``; FLOPs ``2*MACs`` plus one add per
  output for the bias; activation memory ``H*W*C * bytes``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Calculation", "InvalidConfiguration", "output_size", "transposed_output_size",
           "conv", "pool", "conv_transpose", "dense"]


class InvalidConfiguration(ValueError):
    """A layer configuration that gives no output (the message shows the steps)."""


@dataclass(frozen=True)
class Calculation:
    """A result with its steps. ``value``: an int, or a dict for a whole layer."""

    value: Any
    steps: tuple[str, ...] = ()
    warnings: tuple[str, ...] = field(default=())

    def __str__(self) -> str:
        return "\n".join([*self.steps, *(f"warning: {w}" for w in self.warnings)])

    def __getitem__(self, key: str) -> Any:
        return self.value[key]


def _num(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else f"{x:g}"


def _check_int(name: str, v: Any, low: int) -> int:
    if isinstance(v, bool) or not isinstance(v, int) or v < low:
        raise ValueError(f"{name} must be an integer >= {low}, got {v!r}")
    return int(v)


def _pads(padding: Any, size: int, k_eff: int, stride: int) -> tuple[str, int, int]:
    """(mode, before, after) for padding 'valid', 'same', an int or a (before, after) pair."""
    if isinstance(padding, str):
        mode = padding.lower()
        if mode == "valid":
            return "valid", 0, 0
        if mode == "same":
            out = -(-size // stride)
            total = max((out - 1) * stride + k_eff - size, 0)
            return "same", total // 2, total - total // 2
        raise ValueError(f"padding must be 'valid', 'same', an integer or a (before, after) "
                         f"pair, got {padding!r}")
    if isinstance(padding, (tuple, list)) and len(padding) == 2:
        return "pair", _check_int("padding", padding[0], 0), _check_int("padding", padding[1], 0)
    p = _check_int("padding", padding, 0)
    return "int", p, p


def output_size(size: int, kernel: int, stride: int = 1, padding: Any = 0, dilation: int = 1,
                ceil_mode: bool = False, what: str = "kernel") -> Calculation:
    """Output length along one axis of a convolution or pooling window (see module doc)."""
    w, k = _check_int("input size", size, 1), _check_int(what, kernel, 1)
    s, d = _check_int("stride", stride, 1), _check_int("dilation", dilation, 1)
    k_eff = d * (k - 1) + 1
    steps = [f"K' = {d}*({k} - 1) + 1 = {k_eff}"] if d > 1 else []
    kname = "K'" if d > 1 else str(k)
    mode, pb, pa = _pads(padding, w, k_eff, s)
    if mode == "same":
        out = -(-w // s)
        steps.append(f"same: ceil({w} / {s}) = {out}; padding = max(({out} - 1)*{s} + "
                     f"{k_eff} - {w}, 0) = {pb + pa} -> {pb} before, {pa} after")
        return Calculation(out, tuple(steps))
    span = w + pb + pa - k_eff
    pad_txt = f" + 2*{pb}" if pb == pa else f" + {pb} + {pa}"
    pad_txt = "" if pb == pa == 0 else pad_txt
    expr = f"({w} - {k_eff if d > 1 else k}{pad_txt}) / {s} + 1"
    if d > 1:
        expr = f"({w} - K'{pad_txt}) / {s} + 1 = ({w} - {k_eff}{pad_txt}) / {s} + 1"
    exact = span / s + 1
    if span < 0:
        steps.append(f"{expr} = {_num(exact)} < 1")
        raise InvalidConfiguration(
            f"the {what} ({kname}, effective {k_eff}) is larger than the padded input "
            f"({w} + {pb + pa} = {w + pb + pa}): no output. " + "; ".join(steps))
    out = (math.ceil if ceil_mode else math.floor)(span / s) + 1
    if ceil_mode and (out - 1) * s >= w + pb:  # PyTorch: the last window must start inside
        out -= 1
    rounding = "ceil" if ceil_mode else "floor"
    steps.append(f"{expr} = {_num(exact)}" + ("" if exact == out else f" -> {rounding} -> {out}"))
    warnings = []
    dropped = span - (out - 1) * s  # cells at the end of the padded input no window reads
    if dropped > pa and not ceil_mode:
        warnings.append(f"(W - K' + 2P) = {span} is not a multiple of the stride {s}: the last "
                        f"{dropped - pa} input row(s)/column(s) are never read (dropped pixels)")
    elif dropped > 0 and not ceil_mode:
        steps.append(f"(the last {dropped} padding cell(s) are never read; no input pixel "
                     f"is dropped)")
    if max(pb, pa) >= k_eff:
        warnings.append(f"padding {max(pb, pa)} >= kernel {k_eff}: some outputs read only "
                        f"padding")
    return Calculation(out, tuple(steps), tuple(warnings))


def transposed_output_size(size: int, kernel: int, stride: int = 1, padding: Any = 0,
                           output_padding: int = 0, dilation: int = 1) -> Calculation:
    """Output length of a transposed convolution: ``(W - 1)*S - 2P + D*(K - 1) + 1 + OP``;
    Keras ``same``: ``W*S``; Keras ``valid``: ``W*S + max(K' - S, 0)``."""
    w, k = _check_int("input size", size, 1), _check_int("kernel", kernel, 1)
    s, d = _check_int("stride", stride, 1), _check_int("dilation", dilation, 1)
    op = _check_int("output padding", output_padding, 0)
    if op >= max(s, d):
        raise InvalidConfiguration(f"output padding must be smaller than the stride or the "
                                   f"dilation, got {op} with stride {s}, dilation {d}")
    k_eff = d * (k - 1) + 1
    if isinstance(padding, str) and padding.lower() in ("same", "valid") and op == 0:
        if padding.lower() == "same":
            return Calculation(w * s, (f"same: {w} * {s} = {w * s}",))
        out = w * s + max(k_eff - s, 0)
        return Calculation(out, (f"valid: {w}*{s} + max({k_eff} - {s}, 0) = {out}",))
    _, pb, pa = _pads(padding if not isinstance(padding, str) else 0, w, k_eff, s)
    out = (w - 1) * s - pb - pa + k_eff + op
    pad_txt = f" - 2*{pb}" if pb == pa else f" - {pb} - {pa}"
    step = f"({w} - 1)*{s}{pad_txt} + {k_eff} + {op} = {out}"
    if out < 1:
        raise InvalidConfiguration(f"the padding crops the whole output: {step}")
    return Calculation(out, (step,))


def _shape(name: str, dims: Sequence[int], n: int) -> tuple[int, ...]:
    if len(dims) != n:
        raise ValueError(f"{name} needs {n} numbers, got {len(dims)}: {tuple(dims)}")
    return tuple(_check_int(name, v, 1) for v in dims)


def _pair(v: Any, name: str) -> tuple[int, int]:
    if isinstance(v, (tuple, list)) and len(v) == 2 and not isinstance(v[0], (tuple, list)):
        return int(v[0]), int(v[1])
    if isinstance(v, (tuple, list)):
        raise ValueError(f"{name} must be an integer or two integers, got {v!r}")
    return v, v


def _spatial(h: int, w: int, kernel: Any, stride: Any, padding: Any, dilation: Any,
             ceil_mode: bool, what: str) -> tuple[list[int], list[str], list[str]]:
    kh, kw = _pair(kernel, what)
    sh, sw = _pair(stride, "stride")
    dh, dw = _pair(dilation, "dilation")
    pads = padding if isinstance(padding, str) else _pair(padding, "padding")
    ph, pw = (pads, pads) if isinstance(pads, str) else pads
    sizes, steps, warns = [], [], []
    for axis, args in (("height", (h, kh, sh, ph, dh)), ("width", (w, kw, sw, pw, dw))):
        try:
            c = output_size(*args, ceil_mode=ceil_mode, what=what)
        except InvalidConfiguration as e:
            raise InvalidConfiguration(f"{axis}: {e}") from None
        sizes.append(c.value)
        steps += [f"{axis}: {t}" for t in c.steps]
        warns += [f"{axis}: {t}" for t in c.warnings]
    return sizes, steps, warns


def _memory(shape: Sequence[int], dtype_bytes: int) -> tuple[int, str]:
    n = math.prod(shape)
    dims = "*".join(map(str, shape))
    return n * dtype_bytes, f"output memory = {dims} * {dtype_bytes} bytes = {n * dtype_bytes:,} " \
                            f"bytes per sample"


def conv(input_shape: Sequence[int], filters: int, kernel: Any, stride: Any = 1,
         padding: Any = 0, dilation: Any = 1, groups: int = 1, bias: bool = True,
         dtype_bytes: int = 4) -> Calculation:
    """A 2-D convolution on an (H, W, C) input: output shape, parameters, MACs, FLOPs,
    activation memory, each with its steps."""
    h, w, c = _shape("input", input_shape, 3)
    f = _check_int("filters", filters, 1)
    g = _check_int("groups", groups, 1)
    if c % g or f % g:
        raise InvalidConfiguration(f"groups={g} must divide the input channels ({c}) and the "
                                   f"filters ({f})")
    (oh, ow), steps, warns = _spatial(h, w, kernel, stride, padding, dilation, False, "kernel")
    kh, kw = _pair(kernel, "kernel")
    cin = c // g
    params = (kh * kw * cin + (1 if bias else 0)) * f
    grp = f"/{g}" if g > 1 else ""
    steps.append(f"output shape = ({oh}, {ow}, {f})")
    steps.append(f"parameters = ({kh}*{kw}*{c}{grp}{' + 1' if bias else ''}) * {f} = {params:,}")
    macs = oh * ow * kh * kw * cin * f
    steps.append(f"multiply-adds = {oh}*{ow} * {kh}*{kw}*{c}{grp} * {f} = {macs:,}")
    flops = 2 * macs + (oh * ow * f if bias else 0)
    steps.append(f"FLOPs = 2 * {macs:,}" + (f" + {oh}*{ow}*{f} (bias)" if bias else "")
                 + f" = {flops:,}")
    mem, mem_step = _memory((oh, ow, f), dtype_bytes)
    steps.append(mem_step)
    return Calculation({"output_shape": (oh, ow, f), "params": params, "macs": macs,
                        "flops": flops, "memory": mem}, tuple(steps), tuple(warns))


def pool(input_shape: Sequence[int], pool_size: Any, stride: Any = None, padding: Any = 0,
         kind: str = "max", ceil_mode: bool = False, dtype_bytes: int = 4) -> Calculation:
    """Max or average pooling on (H, W, C): output shape, FLOPs (max: K*K - 1 comparisons per
    output; average: K*K - 1 adds and one divide), memory. No parameters."""
    h, w, c = _shape("input", input_shape, 3)
    if kind not in ("max", "avg"):
        raise ValueError(f"pooling kind must be 'max' or 'avg', got {kind!r}")
    stride = pool_size if stride is None else stride
    (oh, ow), steps, warns = _spatial(h, w, pool_size, stride, padding, 1, ceil_mode, "pool")
    kh, kw = _pair(pool_size, "pool")
    per = kh * kw - 1 + (1 if kind == "avg" else 0)
    flops = oh * ow * c * per
    what = "comparisons" if kind == "max" else "adds + 1 divide"
    steps.append(f"output shape = ({oh}, {ow}, {c}); parameters = 0")
    steps.append(f"FLOPs = {oh}*{ow}*{c} * ({kh}*{kw} - 1{' + 1' if kind == 'avg' else ''}) "
                 f"({what}) = {flops:,}")
    mem, mem_step = _memory((oh, ow, c), dtype_bytes)
    steps.append(mem_step)
    return Calculation({"output_shape": (oh, ow, c), "params": 0, "macs": 0, "flops": flops,
                        "memory": mem}, tuple(steps), tuple(warns))


def conv_transpose(input_shape: Sequence[int], filters: int, kernel: Any, stride: Any = 1,
                   padding: Any = 0, output_padding: Any = 0, dilation: Any = 1,
                   bias: bool = True, dtype_bytes: int = 4) -> Calculation:
    """A 2-D transposed convolution on (H, W, C): every input cell is scattered through the
    whole kernel, so MACs = ``H_in*W_in * K*K*C_in * C_out``."""
    h, w, c = _shape("input", input_shape, 3)
    f = _check_int("filters", filters, 1)
    kh, kw = _pair(kernel, "kernel")
    sh, sw = _pair(stride, "stride")
    dh, dw = _pair(dilation, "dilation")
    oph, opw = _pair(output_padding, "output padding")
    ph, pw = (padding, padding) if isinstance(padding, str) else _pair(padding, "padding")
    steps: list[str] = []
    sizes = []
    for axis, args in (("height", (h, kh, sh, ph, oph, dh)), ("width", (w, kw, sw, pw, opw, dw))):
        try:
            r = transposed_output_size(*args)
        except InvalidConfiguration as e:
            raise InvalidConfiguration(f"{axis}: {e}") from None
        sizes.append(r.value)
        steps += [f"{axis}: {t}" for t in r.steps]
    oh, ow = sizes
    params = (kh * kw * c + (1 if bias else 0)) * f
    macs = h * w * kh * kw * c * f
    flops = 2 * macs + (oh * ow * f if bias else 0)
    steps += [f"output shape = ({oh}, {ow}, {f})",
              f"parameters = ({kh}*{kw}*{c}{' + 1' if bias else ''}) * {f} = {params:,}",
              f"multiply-adds = {h}*{w} * {kh}*{kw}*{c} * {f} = {macs:,}",
              f"FLOPs = 2 * {macs:,}" + (f" + {oh}*{ow}*{f} (bias)" if bias else "")
              + f" = {flops:,}"]
    mem, mem_step = _memory((oh, ow, f), dtype_bytes)
    steps.append(mem_step)
    return Calculation({"output_shape": (oh, ow, f), "params": params, "macs": macs,
                        "flops": flops, "memory": mem}, tuple(steps))


def dense(inputs: int, units: int, bias: bool = True, dtype_bytes: int = 4) -> Calculation:
    """A fully connected layer: ``(N_in + 1) * N_out`` parameters, ``N_in * N_out`` MACs."""
    n = _check_int("inputs", inputs, 1)
    u = _check_int("units", units, 1)
    params = (n + (1 if bias else 0)) * u
    macs = n * u
    flops = 2 * macs + (u if bias else 0)
    steps = (f"parameters = ({n}{' + 1' if bias else ''}) * {u} = {params:,}",
             f"multiply-adds = {n} * {u} = {macs:,}",
             f"FLOPs = 2 * {macs:,}" + (f" + {u} (bias)" if bias else "") + f" = {flops:,}",
             _memory((u,), dtype_bytes)[1])
    return Calculation({"output_shape": (u,), "params": params, "macs": macs, "flops": flops,
                        "memory": u * dtype_bytes}, steps)
