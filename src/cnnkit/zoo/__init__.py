"""The model zoo: architecture builders found by name (``cnnkit.zoo.get("resnet18")``)."""

from . import small
from .registry import builder, get, list, register

__all__ = ["get", "list", "register", "builder", "small"]
