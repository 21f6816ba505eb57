"""PyTorch-style constructors over cnnkit's layers, for code ported from ``torch.nn``.

Each name builds the same Keras-style layer the rest of cnnkit uses (``nn.Conv2d`` returns a
:class:`cnnkit.layers.Conv2D`), with PyTorch's argument names, defaults and initialisation, and
built at once when the input size is given (``in_channels``, ``in_features``,
``num_features``), so ``parameters()`` exists before the first call. ``nn.Module`` is the
subclassable :class:`cnnkit.models.Model` whose ``call`` runs ``forward``.

The one rule that does not carry over: cnnkit is channels-last. Inputs are NHWC (torch: NCHW),
logits put the class axis last, and ``Flatten`` of (N, H, W, C) orders features H, W, C (torch:
C, H, W). ``Linear(16 * 5 * 5, 120)`` after a flatten keeps its sizes, but a torch weight
loaded into it must have its input features reordered:
``cnnkit.io.torch_weights.linear_kernel(w, flatten_from=(5, 5, 16))``.
"""

from ..train.torch_losses import BCEWithLogitsLoss, CrossEntropyLoss, MSELoss
from .module import Module, Sequential
from .modules import (
    AdaptiveAvgPool2d,
    AvgPool2d,
    BatchNorm1d,
    BatchNorm2d,
    Conv1d,
    Conv2d,
    Dropout,
    Dropout2d,
    Embedding,
    Flatten,
    Identity,
    LeakyReLU,
    Linear,
    MaxPool2d,
    ReLU,
    Sigmoid,
    Softmax,
    Tanh,
)

__all__ = ["Module", "Sequential", "Conv1d", "Conv2d", "Embedding", "Linear", "BatchNorm1d",
           "BatchNorm2d", "MaxPool2d", "AvgPool2d", "AdaptiveAvgPool2d", "Flatten", "Dropout",
           "Dropout2d", "ReLU", "LeakyReLU", "Sigmoid", "Tanh", "Softmax", "Identity",
           "CrossEntropyLoss", "MSELoss", "BCEWithLogitsLoss"]
