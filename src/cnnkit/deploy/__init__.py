"""Deployment: a thread-safe inference engine that runs a model as a plan of kernel calls
(public names over :mod:`cnnkit.runtime`), pruning (:mod:`cnnkit.deploy.prune`) and knowledge
distillation (:class:`Distiller`)."""

from ..models.distiller import Distiller
from . import prune
from .engine import InferenceEngine, compile_layer

__all__ = ["InferenceEngine", "compile_layer", "Distiller", "prune"]
