"""``cnnkit calc``: the layer calculators of :mod:`cnnkit.analysis.calc`, with their steps."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

from .errors import UsageError


def padding_arg(text: str) -> Any:
    """--padding: 'valid', 'same' or a non-negative integer."""
    if text.lower() in ("valid", "same"):
        return text.lower()
    try:
        v = int(text)
    except ValueError:
        v = -1
    if v < 0:
        raise argparse.ArgumentTypeError(f"--padding must be valid, same or an integer >= 0, "
                                         f"got {text!r}")
    return v


def add_calc(sub: Any, func: Callable, int_type: Callable) -> None:
    """The ``calc`` sub-commands: conv, pool, convtranspose, dense."""
    c = sub.add_parser("calc", help="output size, parameters, multiply-adds, FLOPs and memory "
                       "of one layer, with the formula's steps")
    kinds = c.add_subparsers(dest="layer", metavar="LAYER")
    kinds.required = True
    for name in ("conv", "pool", "convtranspose"):
        k = kinds.add_parser(name, help=f"a 2-D {name} layer on an H W C input")
        k.add_argument("--input", type=int_type, nargs=3, metavar=("H", "W", "C"),
                       required=True)
        k.add_argument("--kernel" if name != "pool" else "--pool", type=int_type, required=True,
                       dest="kernel")
        k.add_argument("--stride", type=int_type, default=None if name == "pool" else 1)
        k.add_argument("--padding", type=padding_arg, default=0)
        if name != "pool":
            k.add_argument("--filters", type=int_type, required=True)
            k.add_argument("--dilation", type=int_type, default=1)
            k.add_argument("--no-bias", action="store_true")
        if name == "conv":
            k.add_argument("--groups", type=int_type, default=1)
        if name == "pool":
            k.add_argument("--kind", choices=("max", "avg"), default="max")
            k.add_argument("--ceil", action="store_true", help="ceil mode (PyTorch)")
        if name == "convtranspose":
            k.add_argument("--output-padding", type=int, default=0)
        k.set_defaults(func=func)
    d = kinds.add_parser("dense", help="a fully connected layer")
    d.add_argument("--input", type=int_type, required=True, metavar="N")
    d.add_argument("--units", type=int_type, required=True)
    d.add_argument("--no-bias", action="store_true")
    d.set_defaults(func=func)


def cmd_calc(args: argparse.Namespace) -> int:
    """Print the steps of one layer's calculation (a configuration with no output: exit 2)."""
    from ..analysis import calc

    try:
        if args.layer == "conv":
            r = calc.conv(args.input, args.filters, args.kernel, args.stride, args.padding,
                          args.dilation, args.groups, not args.no_bias)
        elif args.layer == "pool":
            r = calc.pool(args.input, args.kernel, args.stride, args.padding, args.kind,
                          args.ceil)
        elif args.layer == "convtranspose":
            r = calc.conv_transpose(args.input, args.filters, args.kernel, args.stride,
                                    args.padding, args.output_padding, args.dilation,
                                    not args.no_bias)
        else:
            r = calc.dense(args.input, args.units, not args.no_bias)
    except ValueError as e:
        raise UsageError(f"calc {args.layer}: {e}") from None
    print(r)
    return 0
