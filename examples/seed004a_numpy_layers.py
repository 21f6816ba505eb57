"""Seed 004 (NumPy): the hand-written convolution, ReLU and max pooling, next to cnnkit.ops.

The seed's functions are plain NumPy and run unchanged; the cnnkit versions are one call each
on NHWC arrays (batch and channel axes added), and give the same numbers.
"""

import numpy as np

from cnnkit import ops


def convolve2d(image, kernel, stride=1, padding=0):
    """The seed's 2-D convolution (cross-correlation) on an (H, W) image."""
    if padding > 0:
        image = np.pad(image, padding, mode='constant')
    image_h, image_w = image.shape
    kernel_h, kernel_w = kernel.shape
    out_h = (image_h - kernel_h) // stride + 1
    out_w = (image_w - kernel_w) // stride + 1
    output = np.zeros((out_h, out_w))
    for i in range(0, out_h):
        for j in range(0, out_w):
            h_start, w_start = i * stride, j * stride
            region = image[h_start:h_start + kernel_h, w_start:w_start + kernel_w]
            output[i, j] = np.sum(region * kernel)
    return output


def relu(x):
    return np.maximum(0, x)


def max_pool2d(input_map, pool_size=2, stride=2):
    h, w = input_map.shape
    out_h = (h - pool_size) // stride + 1
    out_w = (w - pool_size) // stride + 1
    output = np.zeros((out_h, out_w))
    for i in range(out_h):
        for j in range(out_w):
            region = input_map[i * stride:i * stride + pool_size, j * stride:j * stride + pool_size]
            output[i, j] = np.max(region)
    return output


image = np.random.rand(28, 28)
edge_detector = np.array([[-1, -1, -1],
                          [-1, 8, -1],
                          [-1, -1, -1]])
feature_map = convolve2d(image, edge_detector, stride=1, padding=1)
pooled_features = max_pool2d(relu(feature_map), pool_size=2, stride=2)
print(f"Input shape: {image.shape}")
print(f"Output shape: {feature_map.shape}")
print(f"After pooling shape: {pooled_features.shape}")

# cnnkit: x (N, H, W, C), kernel (KH, KW, C_in, C_out)
x = image[None, :, :, None].astype(np.float32)
k = edge_detector[:, :, None, None].astype(np.float32)
fm = ops.conv2d(x, k, padding="same")
pooled = ops.max_pool2d(ops.relu(fm), 2, 2)
assert np.allclose(fm.numpy()[0, :, :, 0], feature_map, atol=1e-5)
assert np.allclose(pooled.numpy()[0, :, :, 0], pooled_features, atol=1e-5)
print("cnnkit.ops gives the same feature map and pooled map:", pooled.shape)
