"""The model zoo: architecture builders found by name (``cnnkit.zoo.get("resnet18")``).

Classic CNNs in torchvision's form (layer names = torchvision module paths, PyTorch's padding
and batch-norm constants, so torchvision weights load with
:func:`cnnkit.io.torchvision_names.load_torchvision_weights` and reproduce its logits), plus
MobileNet v1 (Keras form), CIFAR ResNets, U-Net, TextCNN and Siamese networks.
``count_params(model, include_moving_stats=False)`` gives torchvision's parameter counts.
"""

from . import (
    blocks,
    densenet,
    efficientnet,
    inception,
    mobilenet,
    resnet,
    siamese,
    small,
    squeezenet,
    textcnn,
    unet,
    vgg,
)
from .counting import count_params
from .registry import builder, get, list, register
from .siamese import contrastive_loss, pair_distance, triplet_loss

__all__ = ["get", "list", "register", "builder", "small", "count_params", "blocks", "resnet",
           "vgg", "inception", "densenet", "mobilenet", "efficientnet", "squeezenet", "unet",
           "textcnn", "siamese", "contrastive_loss", "triplet_loss", "pair_distance"]
