"""``torch.device``'s habit for ported code: cnnkit computes on the CPU with NumPy, so
``device("cpu")`` is the one place data can live and ``.to(device)`` returns its object
unchanged; asking for an accelerator is an error that says so."""

from __future__ import annotations

from typing import Any

__all__ = ["device", "check_device"]


class device:  # noqa: N801 - torch's spelling, so ported lines stay as written
    """``device("cpu")``, ``device("cpu:0")``, ``device("cuda")`` (any type parses; only the
    CPU can be used)."""

    def __init__(self, type: str | device = "cpu", index: int | None = None):  # noqa: A002
        if isinstance(type, device):
            type, index = type.type, type.index
        if not isinstance(type, str):
            raise TypeError(f"device: expected a string such as 'cpu', got {type!r}")
        name, _, idx = type.partition(":")
        if idx:
            if not idx.isdigit() or index is not None:
                raise ValueError(f"device: bad device string {type!r}")
            index = int(idx)
        self.type, self.index = name, index

    def __repr__(self) -> str:
        return f"device(type='{self.type}'" + ("" if self.index is None else
                                                f", index={self.index}") + ")"

    def __str__(self) -> str:
        return self.type if self.index is None else f"{self.type}:{self.index}"

    def __eq__(self, other: Any) -> bool:
        return isinstance(other, device) and (other.type, other.index) == (self.type, self.index)

    def __hash__(self) -> int:
        return hash((self.type, self.index))


def check_device(where: str, dev: Any) -> None:
    """Pass for the CPU; a ValueError naming what was asked for otherwise."""
    d = device(dev) if isinstance(dev, (str, device)) else None
    if d is None:
        raise TypeError(f"{where}.to(): expected a device such as 'cpu', got {dev!r}")
    if d.type != "cpu":
        raise ValueError(f"{where}.to('{d}'): cnnkit computes on the CPU with NumPy; "
                         f"only 'cpu' is available")
