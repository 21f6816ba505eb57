"""Seed 001 (Keras): the Sequential CNN on 64 x 64 x 3 images.

Changed from the seed: the two import lines. Trained below on mnist5k digits padded to 64 x 64
and repeated over three channels, with integer labels.
"""

from _small import SMALL, digits

from cnnkit.layers import Conv2D, Dense, Dropout, Flatten, MaxPooling2D
from cnnkit.models import Sequential

model = Sequential([
Conv2D(32, (3,3), activation='relu', input_shape=(64,64,3)),
MaxPooling2D(pool_size=(2,2)),
Conv2D(64, (3,3), activation='relu'),
MaxPooling2D(pool_size=(2,2)),
Flatten(),
Dense(128, activation='relu'),
Dropout(0.5),
Dense(10, activation='softmax')
])

model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
x, y = digits(128 if SMALL else None, size=64, channels=3)
model.fit(x, y, epochs=1 if SMALL else 3, batch_size=32)
model.summary()
