"""Seed 004 (PyTorch + torchvision): ImageClassifier, a pretrained ResNet-18 with a new head.

Changed from the seed: the imports; ``models.resnet18(pretrained=True)`` -> the zoo's
``resnet18`` without its classifier, with torchvision's weights read from a ``.pth`` file when
one is given (cnnkit downloads nothing); replacing ``model.fc`` -> stacking the backbone and a
new ``nn.Linear`` (``num_features`` is the backbone's output width); no ``.to(device)`` or
``eval()`` (``predict`` is inference); the transforms -> ``cnnkit.data.augment`` (``Resize``
takes (height, width), torch's ``Resize(256)`` scales the shorter side); ``torch.max(p, 1)`` ->
NumPy's ``max``/``argmax`` until Tensor.max(dim) lands.
"""

import os
import sys
import tempfile

import numpy as np
from _small import SMALL

from cnnkit import models, nn, ops
from cnnkit.data import augment as transforms
from cnnkit.data.files import load_image
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
        # Define preprocessing
        self.transform = transforms.Compose([
            transforms.Resize(size * 8 // 7, size * 8 // 7),
            transforms.CenterCrop(size, size),
            transforms.Rescaling(1 / 255),
            transforms.Normalize(mean=[0.485, 0.456, 0.406],
                                 std=[0.229, 0.224, 0.225])
        ])
    def predict(self, image_path, class_names):
        """Predicted class and confidence for a single image"""
        # Load and preprocess image
        image = load_image(image_path, color_mode="rgb").astype(np.float32)
        image_tensor, _ = self.transform(image[None])
        # Make prediction
        outputs = self.model.predict(image_tensor)
        probabilities = ops.softmax(outputs).numpy()
        confidence, predicted_idx = probabilities.max(1), probabilities.argmax(1)
        predicted_class = class_names[int(predicted_idx[0])]
        confidence_score = float(confidence[0])
        return predicted_class, confidence_score


# Example usage: python seed004e_image_classifier.py [IMAGE] [resnet18.pth]
classifier = ImageClassifier(num_classes=5, size=64 if SMALL else 224,
                             weights_path=sys.argv[2] if len(sys.argv) > 2 else None)
class_names = ['cat', 'dog', 'bird', 'fish', 'horse']
image_path = next((a for a in sys.argv[1:2] if a != "--small"), None)
if image_path is None:  # a made-up picture
    from PIL import Image
    image_path = os.path.join(tempfile.mkdtemp(), "image.png")
    pixels = np.random.default_rng(0).integers(0, 256, (90, 120, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(image_path)
prediction, confidence = classifier.predict(image_path, class_names)
print(f"Predicted: {prediction} (Confidence: {confidence:.2%})")
