"""``torch.cuda``'s queries for ported code: cnnkit runs on the CPU, so there is no CUDA device
(``device('cuda' if cuda.is_available() else 'cpu')`` picks the CPU)."""

from __future__ import annotations

__all__ = ["is_available", "device_count"]


def is_available() -> bool:
    return False


def device_count() -> int:
    return 0
