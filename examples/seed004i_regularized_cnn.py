"""Seed 004 (PyTorch): RegularizedCNN (BatchNorm2d, Dropout2d, BatchNorm1d) and Adam with
L2 weight decay.

Changed from the seed: the imports. Inputs are NHWC (N, 28, 28, 3), so the flatten line
``x.view(x.size(0), -1)``, run as written, orders the features H, W, C (torch: C, H, W).
``BatchNorm2d`` keeps torch's momentum 0.1, eps 1e-5 and unbiased running variance.
"""

from _small import SMALL, digits

from cnnkit import nn
from cnnkit.train import optimizers as optim


class RegularizedCNN(nn.Module):
    """CNN with multiple regularization techniques"""
    def __init__(self, num_classes, dropout_rate=0.5):
        super(RegularizedCNN, self).__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 64, 3, padding=1),
            nn.BatchNorm2d(64), # Batch normalization
            nn.ReLU(inplace=True),
            nn.MaxPool2d(2),
            nn.Dropout2d(0.25), # Spatial dropout
            nn.Conv2d(64, 128, 3, padding=1),
            nn.BatchNorm2d(128),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(2),
            nn.Dropout2d(0.25),
        )
        self.classifier = nn.Sequential(
            nn.Linear(128 * 7 * 7, 512),
            nn.BatchNorm1d(512),
            nn.ReLU(inplace=True),
            nn.Dropout(dropout_rate),
            nn.Linear(512, num_classes)
        )
    def forward(self, x):
        x = self.features(x)
        x = x.view(x.size(0), -1)
        x = self.classifier(x)
        return x

# Training with L2 regularization (weight decay)
model = RegularizedCNN(num_classes=10)
optimizer = optim.Adam(model.parameters(), lr=0.001, weight_decay=1e-4)

criterion = nn.CrossEntropyLoss()
x, y = digits(64 if SMALL else 2048, channels=3)
for step, i in enumerate(range(0, len(x), 32)):
    optimizer.zero_grad()
    loss = criterion(model(x[i:i + 32], training=True), y[i:i + 32])
    loss.backward()
    optimizer.step()
    print(f"step {step}: loss {loss.item():.4f}")
