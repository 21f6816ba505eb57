"""Models: functional ``Model``, ``Sequential``, training, summary and model files."""

from .model import Model, Sequential
from .saving import load_model
from .serialization import deserialize, register, serialize

__all__ = ["Model", "Sequential", "load_model", "register", "serialize", "deserialize"]
