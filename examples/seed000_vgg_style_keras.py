"""Seed 000 (TensorFlow/Keras): the VGG-style CNN with BatchNormalization and Dropout.

Changed from the seed: the two import lines. Below the seed's code, the model is trained on
mnist5k digits (the seed stops at ``summary()``).
"""

import numpy as np
from _small import SMALL, digits

from cnnkit import layers, models


def build_advanced_cnn(input_shape=(224, 224, 3), num_classes=10):
    model = models.Sequential()

    # --- Convolutional Block 1 ---
    # 32 Filters, 3x3 Kernel, Same Padding
    model.add(layers.Conv2D(32, (3, 3), padding='same', input_shape=input_shape))
    model.add(layers.BatchNormalization())
    model.add(layers.Activation('relu'))

    model.add(layers.Conv2D(32, (3, 3), padding='same'))
    model.add(layers.BatchNormalization())
    model.add(layers.Activation('relu'))

    # Downsample spatially by 2x2
    model.add(layers.MaxPooling2D(pool_size=(2, 2)))
    model.add(layers.Dropout(0.25))

    # --- Convolutional Block 2 ---
    model.add(layers.Conv2D(64, (3, 3), padding='same'))
    model.add(layers.BatchNormalization())
    model.add(layers.Activation('relu'))
    model.add(layers.MaxPooling2D(pool_size=(2, 2)))
    model.add(layers.Dropout(0.25))

    # --- Fully Connected Classifier ---
    model.add(layers.Flatten())

    # Dense hidden layer
    model.add(layers.Dense(512))
    model.add(layers.BatchNormalization())
    model.add(layers.Activation('relu'))
    model.add(layers.Dropout(0.5))

    # Output layer
    model.add(layers.Dense(num_classes, activation='softmax'))

    # Compile the model
    model.compile(optimizer='adam',
                  loss='categorical_crossentropy',
                  metrics=['accuracy'])

    return model


if not SMALL:  # 103 million weights at 224 x 224 x 3, as in the seed
    cnn_model = build_advanced_cnn()
    cnn_model.summary()

# Trained on digits: one-hot labels for categorical_crossentropy
x, y = digits(256 if SMALL else None)
digit_model = build_advanced_cnn(input_shape=(28, 28, 1))
digit_model.summary()
history = digit_model.fit(x, np.eye(10, dtype=np.float32)[y], epochs=1 if SMALL else 5,
                          batch_size=64, validation_split=0.1)
print("final loss", history.history["loss"][-1])
