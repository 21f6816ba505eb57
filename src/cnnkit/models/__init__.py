"""Models: functional ``Model``, ``Sequential``, training, summary and model files."""

from .distiller import Distiller
from .model import Model
from .nonfinite import NonFiniteError
from .saving import load_model
from .sequential import Sequential
from .serialization import deserialize, register, serialize

__all__ = ["Model", "Sequential", "Distiller", "NonFiniteError", "load_model", "register",
           "serialize", "deserialize"]
