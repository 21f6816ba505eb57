"""Seed 004 (PyTorch): SimpleCNN and its hand-written training loop on MNIST.

Changed from the seed: the imports, and ``torch.device`` -> ``cnnkit.device``. The rest is the
seed's text: ``DataLoader``, ``transforms``, ``datasets.MNIST``, ``.to(device)`` (the CPU),
``targets.size(0)`` and ``predicted.eq(targets).sum().item()`` work as in PyTorch. The one rule
that differs: images are channels-last, so ``ToTensor`` gives (H, W, C) and batches are
(N, H, W, C); ``nn.Conv2d(1, 32, ...)`` and ``nn.Linear(64 * 7 * 7, 128)`` read the same.
The small mode uses 320 of the embedded digits instead of downloading MNIST.
"""

from _small import SMALL

import cnnkit
from cnnkit import datasets, nn
from cnnkit.data import DataLoader, Subset, transforms
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
def train_cnn(model, train_loader, criterion, optimizer, device, num_epochs=10):
    """
    Train the CNN model
    Args:
        model: CNN model
        train_loader: DataLoader for training data
        criterion: Loss function
        optimizer: Optimization algorithm
        device: CPU or GPU
        num_epochs: Number of training epochs
    """
    model.train()
    for epoch in range(num_epochs):
        running_loss = 0.0
        correct = 0
        total = 0
        for batch_idx, (inputs, targets) in enumerate(train_loader):
            inputs, targets = inputs.to(device), targets.to(device)
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
            total += targets.size(0)
            correct += predicted.eq(targets).sum().item()
            if (batch_idx + 1) % 100 == 0:
                print(f'Epoch [{epoch+1}/{num_epochs}], '
                      f'Step [{batch_idx+1}/{len(train_loader)}], '
                      f'Loss: {running_loss/100:.4f}, '
                      f'Accuracy: {100.*correct/total:.2f}%')
                running_loss = 0.0
        print(f'Epoch [{epoch+1}/{num_epochs}] done, accuracy {100.*correct/total:.2f}%')

# Example setup
device = cnnkit.device('cuda' if cnnkit.cuda.is_available() else 'cpu')
# Prepare data
transform = transforms.Compose([
    transforms.ToTensor(),
    transforms.Normalize((0.1307,), (0.3081,))
])
if SMALL:  # 320 of the embedded digits: no download
    train_dataset = Subset(datasets.MNIST5k(train=True, transform=transform), range(320))
else:
    train_dataset = datasets.MNIST(root='./data', train=True,
                                   download=True, transform=transform)
train_loader = DataLoader(train_dataset, batch_size=128, shuffle=True)
# Initialize model, loss, and optimizer
model = SimpleCNN().to(device)
criterion = nn.CrossEntropyLoss()
optimizer = optim.Adam(model.parameters(), lr=0.001)
# Train the model
train_cnn(model, train_loader, criterion, optimizer, device, num_epochs=1 if SMALL else 10)
