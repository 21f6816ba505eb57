"""Seed 004 (PyTorch): SimpleCNN and its hand-written training loop on MNIST.

Changed from the seed: the imports; no ``device`` or ``.to(device)``; the batches are NumPy
arrays, so ``targets.size(0)`` -> ``len(targets)`` and ``predicted.eq(targets).sum().item()``
-> ``int((predicted == targets).sum())`` (``outputs.max(1)`` gives the indices as a NumPy
array); the DataLoader/transforms pipeline -> NumPy batches of mnist5k normalised with the
same mean and std (so no ``len(train_loader)`` in the message). Inputs are NHWC.
"""

import numpy as np
from _small import SMALL, digits

from cnnkit import nn
from cnnkit.train import optimizers as optim


# Define a simple CNN model
class SimpleCNN(nn.Module):
    def __init__(self):
        super(SimpleCNN, self).__init__()
        self.conv_layers = nn.Sequential(
            nn.Conv2d(1, 32, kernel_size=3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(32, 64, kernel_size=3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
        )
        self.fc_layers = nn.Sequential(
            nn.Flatten(),
            nn.Linear(64 * 7 * 7, 128),
            nn.ReLU(),
            nn.Dropout(0.5),
            nn.Linear(128, 10)
        )
    def forward(self, x):
        x = self.conv_layers(x)
        x = self.fc_layers(x)
        return x

# Training function
def train_cnn(model, train_loader, criterion, optimizer, num_epochs=10):
    model.train()
    for epoch in range(num_epochs):
        running_loss = 0.0
        correct = 0
        total = 0
        for batch_idx, (inputs, targets) in enumerate(train_loader()):
            # Forward pass
            optimizer.zero_grad()
            outputs = model(inputs)
            loss = criterion(outputs, targets)
            # Backward pass and optimization
            loss.backward()
            optimizer.step()
            # Statistics
            running_loss += loss.item()
            _, predicted = outputs.max(1)
            total += len(targets)
            correct += int((predicted == targets).sum())
            if (batch_idx + 1) % 10 == 0:
                print(f'Epoch [{epoch+1}/{num_epochs}], '
                      f'Step [{batch_idx+1}], '
                      f'Loss: {running_loss/10:.4f}, '
                      f'Accuracy: {100.*correct/total:.2f}%')
                running_loss = 0.0

# Prepare data: transforms.Normalize((0.1307,), (0.3081,)) on [0, 1] pixels
x, y = digits(320 if SMALL else None)
x = (x - 0.1307) / 0.3081
rng = np.random.default_rng(0)
def train_loader(batch_size=32 if SMALL else 128):
    order = rng.permutation(len(x))
    for i in range(0, len(x), batch_size):
        yield x[order[i:i + batch_size]], y[order[i:i + batch_size]]

# Initialize model, loss, and optimizer
model = SimpleCNN()
criterion = nn.CrossEntropyLoss()
optimizer = optim.Adam(model.parameters(), lr=0.001)

train_cnn(model, train_loader, criterion, optimizer, num_epochs=1 if SMALL else 3)
