"""Deployment: a thread-safe inference engine that runs a model as a plan of kernel calls
(public names over :mod:`cnnkit.runtime`), pruning (:mod:`cnnkit.deploy.prune`), knowledge
distillation (:class:`Distiller`) and post-training int8 quantization (:func:`quantize` ->
:class:`QuantizedModel`, integer kernels of :mod:`cnnkit.kernels`), with quantization-aware
training (:func:`prepare_qat`)."""

from ..models.distiller import Distiller
from . import prune
from .engine import InferenceEngine, compile_layer
from .int8_model import QuantizedModel, quantize
from .int8_qat import QATModel, prepare_qat
from .int8_report import QuantReport

__all__ = ["InferenceEngine", "compile_layer", "Distiller", "prune", "QuantizedModel",
           "QuantReport", "quantize", "load_quantized", "QATModel", "prepare_qat"]


def load_quantized(path: object) -> QuantizedModel:
    """Read an int8 model written by ``QuantizedModel.save``."""
    return QuantizedModel.load(path)
