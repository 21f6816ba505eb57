"""Seed 004 (PyTorch): learning-rate scheduling, ReduceLROnPlateau and cosine annealing.

Changed from the seed: the import (``torch.optim.lr_scheduler`` -> ``cnnkit.train.lr_scheduler``,
its names sorted);
the schedulers' lines run as written. The seed's commented training loop is written out here
(``train_one_epoch`` / ``validate`` on mnist5k digits), once with each scheduler:
``scheduler.step(val_loss)`` for ReduceLROnPlateau, ``scheduler.step()`` for CosineAnnealingLR.
"""

from _small import SMALL, digits

from cnnkit import nn
from cnnkit.train import optimizers as optim
from cnnkit.train.lr_scheduler import CosineAnnealingLR, ReduceLROnPlateau

x, y = digits(256 if SMALL else 4000)
split = int(len(x) * 0.9)
num_epochs, batch_size = (2, 64) if SMALL else (20, 128)


def make_model():
    return nn.Sequential(nn.Conv2d(1, 8, 3), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                         nn.Linear(8 * 13 * 13, 10))


def train_one_epoch(model, criterion, optimizer):
    model.train()
    total = 0.0
    for i in range(0, split, batch_size):
        optimizer.zero_grad()
        loss = criterion(model(x[i:min(i + batch_size, split)]), y[i:min(i + batch_size, split)])
        loss.backward()
        optimizer.step()
        total += loss.item()
    return total / -(-split // batch_size)


def validate(model, criterion):
    model.eval()
    return criterion(model(x[split:]), y[split:]).item()


criterion = nn.CrossEntropyLoss()
model = make_model()
optimizer = optim.Adam(model.parameters(), lr=0.001)

# Reduce learning rate when validation loss plateaus
scheduler = ReduceLROnPlateau(optimizer, mode='min', factor=0.5,
                              patience=5, verbose=True)
for epoch in range(num_epochs):
    train_loss = train_one_epoch(model, criterion, optimizer)
    val_loss = validate(model, criterion)
    scheduler.step(val_loss)  # For ReduceLROnPlateau
    print(f"epoch {epoch + 1}: train {train_loss:.4f}, val {val_loss:.4f}, "
          f"lr {optimizer.param_groups[0]['lr']:.2e}")

# Cosine annealing schedule
model = make_model()
optimizer = optim.Adam(model.parameters(), lr=0.001)
scheduler = CosineAnnealingLR(optimizer, T_max=50, eta_min=1e-6)
for epoch in range(num_epochs):
    train_loss = train_one_epoch(model, criterion, optimizer)
    val_loss = validate(model, criterion)
    scheduler.step()
    print(f"epoch {epoch + 1}: train {train_loss:.4f}, val {val_loss:.4f}, "
          f"lr {optimizer.param_groups[0]['lr']:.2e}")
