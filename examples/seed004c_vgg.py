"""Seed 004 (PyTorch): VGGBlock and SimpleVGG.

Changed from the seed: the import. The flatten line ``x.view(x.size(0), -1)`` runs as written
but, cnnkit being channels-last, orders the features H, W, C (torch: C, H, W). Note the seed's
SimpleVGG has four pooling blocks, so 224 x 224 inputs reach the classifier as 14 x 14 x 512,
not the 7 x 7 x 512 its first Linear expects (in PyTorch too): it runs on 112 x 112 inputs.
"""

import numpy as np
from _small import SMALL

from cnnkit import nn


class VGGBlock(nn.Module):
    """VGG building block with repeated 3x3 convolutions"""
    def __init__(self, in_channels, out_channels, num_convs):
        super(VGGBlock, self).__init__()
        layers = []
        for i in range(num_convs):
            layers.append(nn.Conv2d(
                in_channels if i == 0 else out_channels,
                out_channels,
                kernel_size=3,
                padding=1
            ))
            layers.append(nn.ReLU(inplace=True))
        layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
        self.block = nn.Sequential(*layers)
    def forward(self, x):
        return self.block(x)

# Example VGG-like architecture
class SimpleVGG(nn.Module):
    def __init__(self, num_classes=1000):
        super(SimpleVGG, self).__init__()
        self.features = nn.Sequential(
            VGGBlock(3, 64, 2), # Block 1
            VGGBlock(64, 128, 2), # Block 2
            VGGBlock(128, 256, 3), # Block 3
            VGGBlock(256, 512, 3), # Block 4
        )
        self.classifier = nn.Sequential(
            nn.Linear(512 * 7 * 7, 4096),
            nn.ReLU(inplace=True),
            nn.Dropout(0.5),
            nn.Linear(4096, 4096),
            nn.ReLU(inplace=True),
            nn.Dropout(0.5),
            nn.Linear(4096, num_classes)
        )
    def forward(self, x):
        x = self.features(x)
        x = x.view(x.size(0), -1)
        x = self.classifier(x)
        return x


block = VGGBlock(3, 16, 2)
out = block(np.random.rand(2, 32, 32, 3).astype(np.float32))
print("VGGBlock(3, 16, 2) on (2, 32, 32, 3):", out.shape)  # (2, 16, 16, 16)
if not SMALL:  # 134 million weights
    model = SimpleVGG(num_classes=1000)
    print("parameters:", sum(p.size for p in model.parameters()))
    print("logits:", model(np.random.rand(1, 112, 112, 3).astype(np.float32)).shape)
