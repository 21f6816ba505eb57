"""The default random generator: one seed reproduces initialisation, dropout and shuffling.

``cnnkit.random.seed(s)`` resets it; functions that take ``rng=None`` draw from it.
"""

from __future__ import annotations

import numpy as np

_rng = np.random.default_rng()


def seed(value: int | None) -> None:
    """Reset the default generator to ``numpy.random.default_rng(value)``."""
    global _rng
    _rng = np.random.default_rng(value)


def get_rng(rng: np.random.Generator | None = None) -> np.random.Generator:
    """``rng`` if given, else the default generator."""
    return rng if rng is not None else _rng


def get_state() -> dict:
    """The default generator's state (JSON-ready), for checkpoints that resume exactly."""
    return _rng.bit_generator.state


def set_state(state: dict) -> None:
    _rng.bit_generator.state = state
