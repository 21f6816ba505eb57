"""Seed 004 (PyTorch + torchvision): ImageClassifier, a pretrained ResNet-18 with a new head.

Changed from the seed: the imports; ``models.resnet18(pretrained=True)`` -> the zoo's
``resnet18`` without its classifier, with torchvision's weights read from a ``.pth`` file when
one is given (cnnkit downloads no weights); replacing ``model.fc`` -> stacking the backbone and a
new ``nn.Linear`` (``num_features`` is the backbone's output width); ``torch.device`` ->
``cnnkit.device``, ``torch.no_grad`` -> ``cnnkit.no_grad``, ``torch.softmax(x, dim=1)`` ->
``ops.softmax(x, axis=1)``, ``torch.max(p, 1)`` -> ``p.max(1)``. The transforms, PIL,
``unsqueeze(0).to(device)`` and ``.item()`` are the seed's; images are channels-last.
"""

import os
import sys
import tempfile

import numpy as np
from _small import SMALL
from PIL import Image

import cnnkit
from cnnkit import models, nn, ops
from cnnkit.data import transforms
from cnnkit.io import load_torchvision_weights
from cnnkit.zoo.resnet import resnet18


class ImageClassifier:
    """Custom image classifier using pre-trained CNN"""
    def __init__(self, num_classes, model_name='resnet18', weights_path=None, size=224):
        # Load pre-trained model
        if model_name == 'resnet18':
            backbone = resnet18(input_shape=(size, size, 3), include_top=False,
                                pooling="avg")
            if weights_path:  # torchvision's resnet18-f37072fd.pth, say
                load_torchvision_weights(backbone, weights_path, strict=False)
            num_features = backbone.output_shape[-1]
            self.model = models.Sequential([backbone, nn.Linear(num_features, num_classes)])
        self.device = cnnkit.device('cuda' if cnnkit.cuda.is_available() else 'cpu')
        self.model = self.model.to(self.device)
        # Define preprocessing
        self.transform = transforms.Compose([
            transforms.Resize(size * 8 // 7),
            transforms.CenterCrop(size),
            transforms.ToTensor(),
            transforms.Normalize(mean=[0.485, 0.456, 0.406],
                                 std=[0.229, 0.224, 0.225])
        ])
    def predict(self, image_path, class_names):
        """
        Predict class for a single image
        Args:
            image_path: Path to the image
            class_names: List of class names
        Returns:
            Predicted class and confidence
        """
        self.model.eval()
        # Load and preprocess image
        image = Image.open(image_path).convert('RGB')
        image_tensor = self.transform(image).unsqueeze(0).to(self.device)
        # Make prediction
        with cnnkit.no_grad():
            outputs = self.model(image_tensor)
            probabilities = ops.softmax(outputs, axis=1)
            confidence, predicted_idx = probabilities.max(1)
            predicted_class = class_names[predicted_idx.item()]
            confidence_score = confidence.item()
        return predicted_class, confidence_score


# Example usage: python seed004e_image_classifier.py [IMAGE] [resnet18.pth]
classifier = ImageClassifier(num_classes=5, size=64 if SMALL else 224,
                             weights_path=sys.argv[2] if len(sys.argv) > 2 else None)
class_names = ['cat', 'dog', 'bird', 'fish', 'horse']
image_path = next((a for a in sys.argv[1:2] if a != "--small"), None)
if image_path is None:  # a made-up picture
    image_path = os.path.join(tempfile.mkdtemp(), "image.png")
    pixels = np.random.default_rng(0).integers(0, 256, (90, 120, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(image_path)
prediction, confidence = classifier.predict(image_path, class_names)
print(f"Predicted: {prediction} (Confidence: {confidence:.2%})")
