"""The error Keras-file readers raise, and the memory bound they keep: reading a file of F
bytes allocates at most ``EXPANSION * F + FLOOR`` bytes for the arrays and members it holds."""

from __future__ import annotations

EXPANSION = 16
FLOOR = 16 << 20


class KerasFileError(ValueError):
    """A Keras ``.keras`` / ``.h5`` file is damaged, hostile or uses something cnnkit does not
    have (a Lambda, a custom class, an external link); the message names the part."""
