"""Keras-style layers (channels-last)."""

from .activation_layers import ELU, Activation, LeakyReLU, ReLU, Softmax
from .base import KerasTensor, Layer
from .conv import Conv1D, Conv2D, Conv3D, DepthwiseConv2D, SeparableConv2D
from .conv_transpose import Conv1DTranspose, Conv2DTranspose, Conv3DTranspose
from .core import (
    Dense,
    Dropout,
    Embedding,
    Flatten,
    Input,
    InputLayer,
    Normalization,
    Permute,
    Rescaling,
    Reshape,
)
from .detection_head import GridHead
from .elementwise import Cast, Clip, ConstantOperand, HardSigmoid, LogSoftmax, UnaryMath
from .lambda_layer import Lambda
from .layer_normalization import GroupNormalization, LayerNormalization, PReLU
from .merge import (
    Add,
    Average,
    Concatenate,
    Divide,
    MatMul,
    Maximum,
    Minimum,
    Multiply,
    Power,
    Subtract,
)
from .normalization import (
    BatchNormalization,
    L2Normalize,
    LocalResponseNormalization,
    SyncBatchNormalization,
)
from .pooling import (
    AdaptiveAveragePooling2D,
    AveragePooling1D,
    AveragePooling2D,
    AveragePooling3D,
    AvgPool1D,
    AvgPool2D,
    AvgPool3D,
    GlobalAveragePooling1D,
    GlobalAveragePooling2D,
    GlobalAveragePooling3D,
    GlobalAvgPool1D,
    GlobalAvgPool2D,
    GlobalAvgPool3D,
    GlobalMaxPool1D,
    GlobalMaxPool2D,
    GlobalMaxPool3D,
    GlobalMaxPooling1D,
    GlobalMaxPooling2D,
    GlobalMaxPooling3D,
    MaxPool1D,
    MaxPool2D,
    MaxPool3D,
    MaxPooling1D,
    MaxPooling2D,
    MaxPooling3D,
)
from .preprocessing import (
    CenterCrop,
    RandomBrightness,
    RandomContrast,
    RandomFlip,
    RandomRotation,
    RandomTranslation,
    RandomZoom,
    Resizing,
)
from .reduction import ArgMax, Reduce
from .regularization import SpatialDropout1D, SpatialDropout2D, SpatialDropout3D
from .reshaping import (
    Cropping1D,
    Cropping2D,
    Cropping3D,
    Resize,
    UpSampling1D,
    UpSampling2D,
    UpSampling3D,
    ZeroPadding1D,
    ZeroPadding2D,
    ZeroPadding3D,
)
from .slicing import ExpandDims, Gather, Pad, Slice, Split, Squeeze

__all__ = [
    # base and core
    "Layer", "KerasTensor", "Input", "InputLayer", "Dense", "Flatten", "Reshape", "Permute",
    "Activation", "ReLU", "LeakyReLU", "ELU", "Softmax", "Dropout", "Embedding", "Rescaling",
    "Normalization", "Lambda",
    # convolution
    "Conv1D", "Conv2D", "Conv3D", "DepthwiseConv2D", "SeparableConv2D", "Conv1DTranspose",
    "Conv2DTranspose", "Conv3DTranspose",
    # pooling
    "MaxPooling1D", "MaxPooling2D", "MaxPooling3D", "AveragePooling1D", "AveragePooling2D",
    "AveragePooling3D", "GlobalAveragePooling1D", "GlobalAveragePooling2D",
    "GlobalAveragePooling3D", "GlobalMaxPooling1D", "GlobalMaxPooling2D", "GlobalMaxPooling3D",
    "MaxPool1D", "MaxPool2D", "MaxPool3D", "AvgPool1D", "AvgPool2D", "AvgPool3D",
    "GlobalAvgPool1D", "GlobalAvgPool2D", "GlobalAvgPool3D", "GlobalMaxPool1D",
    "GlobalMaxPool2D", "GlobalMaxPool3D", "AdaptiveAveragePooling2D",
    # normalization, regularization
    "GridHead",
    "BatchNormalization", "SyncBatchNormalization", "L2Normalize", "LayerNormalization",
    "GroupNormalization", "PReLU",
    "SpatialDropout1D", "SpatialDropout2D", "SpatialDropout3D",
    # merging
    "Add", "Subtract", "Multiply", "Average", "Maximum", "Minimum", "Concatenate",
    # reshaping
    "UpSampling1D", "UpSampling2D", "UpSampling3D", "ZeroPadding1D", "ZeroPadding2D",
    "ZeroPadding3D", "Cropping1D", "Cropping2D", "Cropping3D",
    # preprocessing
    "Resizing", "CenterCrop", "RandomFlip", "RandomRotation", "RandomZoom", "RandomTranslation",
    "RandomContrast", "RandomBrightness",
    # ONNX forms: constants, maths, slicing, reductions, resizing
    "ConstantOperand", "UnaryMath", "Clip", "HardSigmoid", "LogSoftmax", "Cast", "Divide",
    "Power", "MatMul", "LocalResponseNormalization", "Reduce", "ArgMax", "Slice", "Split",
    "Squeeze", "ExpandDims", "Gather", "Pad", "Resize",
]
