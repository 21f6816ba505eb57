"""Spatial dropout (layers/regularization.py): whole channels dropped, seeded."""

from __future__ import annotations

import numpy as np

from cnnkit import layers as L

rng = np.random.default_rng(0)


def test_spatial_dropout_drops_whole_channels():
    for cls, shape in [(L.SpatialDropout1D, (4, 6, 8)), (L.SpatialDropout2D, (4, 3, 5, 8)),
                       (L.SpatialDropout3D, (2, 2, 3, 3, 8))]:
        x = rng.uniform(1, 2, shape).astype(np.float32)
        layer = cls(0.5, seed=3)
        np.testing.assert_array_equal(layer(x).data, x)
        y = layer(x, training=True).data
        ratio = y / x
        spatial = tuple(range(1, len(shape) - 1))
        first = ratio[(slice(None),) + (0,) * len(spatial)]
        np.testing.assert_allclose(ratio, np.broadcast_to(np.expand_dims(first, spatial), shape),
                                   rtol=1e-6)
        assert set(np.round(np.unique(first), 5)) <= {0.0, 2.0}
        assert 0 < (first == 0).mean() < 1
        y2 = cls(0.5, seed=3)(x, training=True).data
        np.testing.assert_array_equal(y, y2)
