"""Shared by the examples: the small mode and a few mnist5k digits.

``CNNKIT_EXAMPLE_SMALL=1`` (or ``--small``) runs each example at a size that finishes in
seconds (tests/test_examples.py runs them all that way)."""

import os
import sys

import numpy as np

SMALL = os.environ.get("CNNKIT_EXAMPLE_SMALL") == "1" or "--small" in sys.argv


def digits(n: int | None = None, size: int = 28, channels: int = 1):
    """(x, y): mnist5k training digits as float32 NHWC in [0, 1], zero-padded to ``size``."""
    from cnnkit.datasets import mnist5k

    (x, y), _ = mnist5k.load_data()
    x, y = x[:n], y[:n].astype(np.int64)
    pad = (size - 28) // 2
    x = np.pad(x, ((0, 0), (pad, size - 28 - pad), (pad, size - 28 - pad)))
    x = np.repeat(x[..., None].astype(np.float32) / 255, channels, axis=-1)
    return x, y


def quick_and_out(doc: str):
    """(quick, out) of an example taking ``--quick`` and ``--out``: quick under the tests too,
    and the PNGs go to a temporary folder there (here by default)."""
    import argparse
    import tempfile
    from pathlib import Path

    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a few seconds of training")
    parser.add_argument("--out", type=Path, default=None,
                        help="folder for the PNGs (default: here; a temporary one under the tests)")
    args, _ = parser.parse_known_args()
    out = args.out or (Path(tempfile.mkdtemp()) if SMALL else Path("."))
    return args.quick or SMALL, out
