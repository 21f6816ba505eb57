"""Seed 004 (PyTorch): LeNet-5 as an ``nn.Module``.

Changed from the seed: the imports and ``torch.relu`` -> ``ops.relu``. Inputs are NHWC:
(N, 28, 28, 1), not (N, 1, 28, 28), so the flatten line ``x.view(x.size(0), -1)`` runs as
written but orders the features H, W, C (torch: C, H, W).
"""

import numpy as np
from _small import SMALL, digits

from cnnkit import nn, ops
from cnnkit.train import losses


class LeNet5(nn.Module):
    """LeNet-5 architecture implementation"""
    def __init__(self, num_classes=10):
        super(LeNet5, self).__init__()
        self.conv1 = nn.Conv2d(1, 6, kernel_size=5, stride=1, padding=2)
        self.pool1 = nn.AvgPool2d(kernel_size=2, stride=2)
        self.conv2 = nn.Conv2d(6, 16, kernel_size=5, stride=1)
        self.pool2 = nn.AvgPool2d(kernel_size=2, stride=2)
        self.fc1 = nn.Linear(16 * 5 * 5, 120)
        self.fc2 = nn.Linear(120, 84)
        self.fc3 = nn.Linear(84, num_classes)
    def forward(self, x):
        x = ops.relu(self.conv1(x))
        x = self.pool1(x)
        x = ops.relu(self.conv2(x))
        x = self.pool2(x)
        # (features in H, W, C order: cnnkit is channels-last)
        x = x.view(x.size(0), -1) # Flatten
        x = ops.relu(self.fc1(x))
        x = ops.relu(self.fc2(x))
        x = self.fc3(x)
        return x

# Create model instance
model = LeNet5(num_classes=10)
print(model)
print("parameters:", sum(p.size for p in model.parameters()))  # 61,706 as in torch

x, y = digits(512 if SMALL else None)
model.compile(optimizer="adam", loss=losses.SparseCategoricalCrossentropy(from_logits=True),
              metrics=["accuracy"])
model.fit(x, y, epochs=1 if SMALL else 5, batch_size=64)
print("predicted classes:", np.argmax(model.predict(x[:8]), axis=-1), "labels:", y[:8])
