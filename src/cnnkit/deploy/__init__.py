"""Deployment: a thread-safe inference engine that runs a model as a plan of kernel calls
(public names over :mod:`cnnkit.runtime`)."""

from .engine import InferenceEngine, compile_layer

__all__ = ["InferenceEngine", "compile_layer"]
