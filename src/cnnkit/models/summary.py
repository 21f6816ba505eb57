"""The ``summary()`` table: each layer's name, type, output shape, parameters and multiply-adds,
then total, trainable and non-trainable parameters.

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


def summary_text(model: Any, line_length: int = 98) -> str:
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
