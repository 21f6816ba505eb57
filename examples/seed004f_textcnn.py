"""Seed 004 (PyTorch): TextCNN, 1-D convolutions over word embeddings.

Changed from the seed: the imports; the ``permute(0, 2, 1)`` line is dropped (cnnkit's Conv1d
takes (N, L, C), which is what the embedding gives); ``torch.relu`` -> ``ops.relu``;
``torch.max(out, dim=2)[0]`` -> ``ops.max(out, axis=1)`` (the length axis);
``torch.cat(..., dim=1)`` -> ``ops.concatenate(..., axis=-1)``.
"""

import numpy as np
from _small import SMALL

from cnnkit import nn, ops
from cnnkit.train import optimizers as optim


class TextCNN(nn.Module):
    """CNN for text classification"""
    def __init__(self, vocab_size, embed_dim, num_classes, num_filters=100):
        super(TextCNN, self).__init__()
        self.embedding = nn.Embedding(vocab_size, embed_dim)
        # Multiple kernel sizes to capture different n-grams
        self.conv1 = nn.Conv1d(embed_dim, num_filters, kernel_size=3)
        self.conv2 = nn.Conv1d(embed_dim, num_filters, kernel_size=4)
        self.conv3 = nn.Conv1d(embed_dim, num_filters, kernel_size=5)
        self.dropout = nn.Dropout(0.5)
        self.fc = nn.Linear(num_filters * 3, num_classes)
    def forward(self, x):
        # x shape: (batch_size, seq_length)
        embedded = self.embedding(x) # (batch_size, seq_length, embed_dim)
        # Apply convolutions and max pooling
        conv1_out = ops.relu(self.conv1(embedded))
        conv2_out = ops.relu(self.conv2(embedded))
        conv3_out = ops.relu(self.conv3(embedded))
        pool1 = ops.max(conv1_out, axis=1)
        pool2 = ops.max(conv2_out, axis=1)
        pool3 = ops.max(conv3_out, axis=1)
        # Concatenate pooled features
        concatenated = ops.concatenate([pool1, pool2, pool3], axis=-1)
        concatenated = self.dropout(concatenated)
        output = self.fc(concatenated)
        return output


# A toy task: does the sentence contain token 1?
rng = np.random.default_rng(0)
tokens = rng.integers(2, 50, (256 if SMALL else 2048, 20))
labels = rng.integers(0, 2, len(tokens))
tokens[labels == 1, rng.integers(0, 20, int(labels.sum()))] = 1
model = TextCNN(vocab_size=50, embed_dim=16, num_classes=2, num_filters=8)
criterion, optimizer = nn.CrossEntropyLoss(), optim.Adam(model.parameters(), lr=0.01)
for epoch in range(2 if SMALL else 10):
    for i in range(0, len(tokens), 32):
        optimizer.zero_grad()
        loss = criterion(model(tokens[i:i + 32], training=True), labels[i:i + 32])
        loss.backward()
        optimizer.step()
    accuracy = (model(tokens).numpy().argmax(-1) == labels).mean()
    print(f"epoch {epoch + 1}: loss {loss.item():.4f}, accuracy {accuracy:.2%}")
