"""Drift monitoring: is what a deployed model sees still like what it was trained on?

- :mod:`.stats`: PSI, two-sample Kolmogorov-Smirnov, MMD with a permutation p-value
  (k + 1) / (n + 1), in NumPy;
- :mod:`.profile`: the reference profile ``cnnkit train`` writes beside a model
  (``model.profile.npz``: input statistics, class distribution, confidence histogram,
  a sample of penultimate-layer embeddings);
- :mod:`.embed`: a model's outputs and penultimate embeddings in one pass;
- :mod:`.drift`: :class:`DriftMonitor`, a sliding window checked against the profile.
"""

from .drift import DriftConfig, DriftMonitor
from .embed import EmbeddingPlan
from .profile import ReferenceProfile, build_profile, image_stats, probabilities, profile_path
from .stats import kolmogorov_sf, ks_2samp, median_bandwidth, mmd2, mmd_test, psi

__all__ = ["DriftConfig", "DriftMonitor", "EmbeddingPlan", "ReferenceProfile", "build_profile",
           "image_stats", "probabilities", "profile_path", "kolmogorov_sf", "ks_2samp",
           "median_bandwidth", "mmd2", "mmd_test", "psi"]
