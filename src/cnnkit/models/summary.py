"""The ``summary()`` table: each layer's name, type, output shape, parameters and multiply-adds,
then total, trainable and non-trainable parameters. With ``flops=True`` also FLOPs and
activation memory; with ``receptive_field=True`` the receptive field (size, jump, start) of
each layer's output (:mod:`cnnkit.models.complexity`).

Convention (as Keras): batch-norm moving mean and variance are counted, as non-trainable.
"""

from __future__ import annotations

from typing import Any


def _fmt_shape(shape: Any) -> str:
    if shape is None:  # a sub-layer that the model's call did not use
        return "?"
    if isinstance(shape, list):
        return ", ".join(_fmt_shape(s) for s in shape)
    return "(" + ", ".join("None" if d is None else str(d) for d in shape) + ")"


def human(n: float) -> str:
    for unit, size in (("G", 1e9), ("M", 1e6), ("K", 1e3)):
        if n >= size:
            return f"{n / size:.2f} {unit}"
    return str(int(n))


FLOPS_NOTE = ("FLOPs: a multiply-add is 2 FLOPs; bias and fused activation +1 per output; "
              "BatchNorm 2, activations 1, softmax 3 per element; Add n-1 per element; pooling "
              "window-1 per output (+1 divide for average); reshapes 0 (cnnkit.layers.costs)")
RF_NOTE = ("RF: receptive field of each output cell in input pixels (size, jump between "
           "neighbouring cells, centre of the first cell's field; Araujo et al. 2019); "
           "'all': the whole input")


def _rf_text(rf: Any) -> list[str]:
    if rf is None:
        return ["?", "?", "?"]
    if isinstance(rf, str):
        return ["all", "", ""]
    cols = []
    for i in range(3):
        vals = [f"{v[i]:g}" for v in rf]
        cols.append(vals[0] if len(set(vals)) == 1 else "x".join(vals))
    return cols


def summary_text(model: Any, line_length: int = 98, flops: bool = False,
                 receptive_field: bool = False) -> str:
    if flops or receptive_field:
        return _extended_text(model, flops, receptive_field)
    rows = model.layer_table()
    cols = [34, 26, 14, 20]
    head = ["Layer (type)", "Output Shape", "Param #", "Mult-Adds"]

    def line(values: list[str]) -> str:
        return "".join(v.ljust(w) if i < 2 else v.rjust(w)
                       for i, (v, w) in enumerate(zip(values, cols, strict=True)))

    width = sum(cols)
    out = [f'Model: "{model.name}"', "=" * width, line(head), "=" * width]
    for name, kind, shape, params, macs in rows:
        out.append(line([f"{name} ({kind})"[:33], _fmt_shape(shape)[:25], f"{params:,}",
                         f"{macs:,}"]))
    total = sum(w.size for w in model.weights)
    trainable = sum(w.size for w in model.trainable_weights)
    macs = sum(r[4] for r in rows)
    out += ["=" * width,
            f"Total params: {total:,}",
            f"Trainable params: {trainable:,}",
            f"Non-trainable params: {total - trainable:,}",
            f"Multiply-adds per sample: {macs:,} ({human(macs)})",
            "_" * width]
    return "\n".join(out)


def _extended_text(model: Any, flops: bool, receptive_field: bool) -> str:
    """The table with FLOPs and memory and/or receptive-field columns."""
    from .complexity import complexity_rows

    rows = complexity_rows(model)
    head = ["Layer (type)", "Output Shape", "Param #", "Mult-Adds"]
    cols = [34, 22, 12, 15]
    if flops:
        head += ["FLOPs", "Memory"]
        cols += [15, 11]
    if receptive_field:
        head += ["RF", "Jump", "Start"]
        cols += [8, 6, 7]

    def line(values: list[str]) -> str:
        return "".join(v.ljust(w) if i < 2 else v.rjust(w)
                       for i, (v, w) in enumerate(zip(values, cols, strict=True)))

    width = sum(cols)
    out = [f'Model: "{model.name}"', "=" * width, line(head), "=" * width]
    for r in rows:
        vals = [f"{r.name} ({r.kind})"[:33], _fmt_shape(r.output_shape)[:21], f"{r.params:,}",
                f"{r.macs:,}"]
        if flops:
            vals += ["?" if r.flops is None else f"{r.flops:,}", human(r.memory) + "B"]
        if receptive_field:
            vals += _rf_text(r.rf)
        out.append(line(vals))
    total = sum(w.size for w in model.weights)
    trainable = sum(w.size for w in model.trainable_weights)
    macs = sum(r.macs for r in rows)
    out += ["=" * width, f"Total params: {total:,}", f"Trainable params: {trainable:,}",
            f"Non-trainable params: {total - trainable:,}",
            f"Multiply-adds per sample: {macs:,} ({human(macs)})"]
    if flops:
        known = sum(r.flops or 0 for r in rows)
        out += [f"FLOPs per sample: {known:,} ({human(known)})",
                f"Activation memory per sample: {human(sum(r.memory for r in rows))}B", FLOPS_NOTE]
        unknown = [r.name for r in rows if r.flops is None]
        if unknown:
            out.append(f"Not counted (no FLOP rule for these layers): {', '.join(unknown)}")
    if receptive_field:
        out.append(RF_NOTE)
    out.append("_" * width)
    return "\n".join(out)
