"""Seed 004 (PyTorch): transfer learning, a ResNet-50 backbone frozen, then fine-tuned.

Changed from the seed: the imports; the pretrained ResNet-50 -> the zoo's ``resnet50`` without
its classifier (torchvision's weights loaded from a ``.pth`` when given, see seed004e);
``param.requires_grad = False`` for every parameter -> ``backbone.trainable = False`` (and True
to unfreeze); replacing ``model.fc`` -> stacking the backbone and the new head;
``model.fc.parameters()`` -> ``head.parameters()``; no ``.to(device)``. Training uses ``fit``,
whose loss takes (y_true, y_pred) as Keras does (torch's criterion takes (output, target)), so
``nn.CrossEntropyLoss()`` -> ``SparseCategoricalCrossentropy(from_logits=True)``, the same
loss. The small run uses ResNet-18.
"""

from _small import SMALL, digits

from cnnkit import models, nn
from cnnkit.train import losses
from cnnkit.train import optimizers as optim
from cnnkit.zoo.resnet import resnet18, resnet50


def create_transfer_learning_model(num_classes, freeze_features=True, size=224):
    """Model ready for fine-tuning: (backbone, head, model)"""
    # Load pre-trained model
    backbone = (resnet18 if SMALL else resnet50)(input_shape=(size, size, 3), include_top=False,
                                                 pooling="avg")
    # Freeze convolutional layers if specified
    if freeze_features:
        backbone.trainable = False
    # Replace final layer
    num_features = backbone.output_shape[-1]
    head = nn.Sequential(
        nn.Linear(num_features, 512),
        nn.ReLU(),
        nn.Dropout(0.3),
        nn.Linear(512, num_classes)
    )
    return backbone, head, models.Sequential([backbone, head])

# Fine-tuning strategy
def fine_tune_model(backbone, head, model, x, y, num_epochs=20):
    """Two-stage fine-tuning approach"""
    # Stage 1: Train only the new layers
    criterion = losses.SparseCategoricalCrossentropy(from_logits=True)
    model.compile(optimizer=optim.Adam(head.parameters(), lr=0.001), loss=criterion)
    print("Stage 1: Training new layers...")
    model.fit(x, y, epochs=num_epochs // 2, batch_size=16)
    # Stage 2: Unfreeze all layers and fine-tune with lower learning rate
    backbone.trainable = True
    model.compile(optimizer=optim.Adam(model.parameters(), lr=0.0001), loss=criterion)
    print("Stage 2: Fine-tuning entire model...")
    model.fit(x, y, epochs=num_epochs // 2, batch_size=16)
    return model


size = 32 if SMALL else 64
backbone, head, model = create_transfer_learning_model(num_classes=10, size=size)
print("trainable parameters with the backbone frozen:", sum(p.size for p in model.parameters()))
x, y = digits(8 if SMALL else 512, size=size, channels=3)
fine_tune_model(backbone, head, model, x, y, num_epochs=2 if SMALL else 6)
