"""Seed 004 (PyTorch): learning-rate scheduling, ReduceLROnPlateau and cosine annealing.

Until ``cnnkit.train.lr_scheduler`` lands, the closest working form is Keras': the plateau rule
is a ``fit`` callback reading ``val_loss`` (torch: ``scheduler.step(val_loss)`` in the loop) and
cosine annealing is a schedule given as the optimizer's learning rate (torch:
``scheduler.step()`` once per epoch; CosineDecay counts optimizer steps, so T_max is given
in steps).
"""

from _small import SMALL, digits

from cnnkit import layers, models
from cnnkit.train import callbacks, optimizers, schedules

x, y = digits(256 if SMALL else 4000)
epochs, batch_size = (2, 64) if SMALL else (20, 128)
steps_per_epoch = -(-int(len(x) * 0.9) // batch_size)


def make_model():
    return models.Sequential([layers.Input((28, 28, 1)), layers.Conv2D(8, 3, activation="relu"),
                              layers.MaxPooling2D(), layers.Flatten(),
                              layers.Dense(10, activation="softmax")])


# Reduce learning rate when validation loss plateaus
# torch: ReduceLROnPlateau(optimizer, mode='min', factor=0.5, patience=5, verbose=True)
scheduler = callbacks.ReduceLROnPlateau(monitor="val_loss", mode="min", factor=0.5,
                                        patience=5, verbose=1)
model = make_model()
model.compile(optimizer=optimizers.Adam(learning_rate=0.001),
              loss="sparse_categorical_crossentropy", metrics=["accuracy"])
model.fit(x, y, epochs=epochs, batch_size=batch_size, validation_split=0.1,
          callbacks=[scheduler])

# Cosine annealing schedule
# torch: CosineAnnealingLR(optimizer, T_max=50, eta_min=1e-6) (starting from lr=0.001)
cosine = schedules.CosineDecay(0.001, decay_steps=50 * steps_per_epoch, alpha=1e-6 / 0.001)
model = make_model()
model.compile(optimizer=optimizers.Adam(learning_rate=cosine),
              loss="sparse_categorical_crossentropy", metrics=["accuracy"])
model.fit(x, y, epochs=epochs, batch_size=batch_size, validation_split=0.1)
