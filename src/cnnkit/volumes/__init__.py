"""Volumes (N, D, H, W, C) for 3D CNNs: augmentation (flips, quarter turns, shifts, noise), a
batch iterator, and voxel data made from images (extruded and rotated digits)."""

from .augment import augment, check_volumes, gaussian_noise, random_flip, random_rot90, random_shift
from .voxels import digit_volumes, extrude, random_rotations, rotate

__all__ = ["augment", "check_volumes", "gaussian_noise", "random_flip", "random_rot90",
           "random_shift", "digit_volumes", "extrude", "random_rotations", "rotate"]
