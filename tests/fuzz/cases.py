"""Fuzz cases: which mutations each reader gets, and the deterministic case for an id.

A random case's id is ``reader/seed/index``; a truncation-sweep case's id is
``reader/seed/trunc/<seed file>/<offset>``. The same id (with the same seed files) always
gives the same bytes, so one failing case can be replayed alone.
"""

from __future__ import annotations

import gzip
import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from . import cnnkit_mut, crafted, keras_mut, mutate, onnxfmt, pickles, zipfmt
from .seeds import Seed


@dataclass(frozen=True)
class Case:
    """One input for one reader."""

    id: str
    reader: str
    data: bytes
    suffix: str
    desc: str


# A family makes (bytes, description, suffix) from an rng, the reader's seeds and a marker path.
Family = Callable[[random.Random, list[Seed], str], tuple[bytes, str, str]]


def on_seed(mutation: mutate.Mutation) -> Family:
    """Apply a byte-level mutation to a randomly chosen seed."""
    def family(rng: random.Random, seeds: list[Seed], marker: str) -> tuple[bytes, str, str]:
        seed = rng.choice(seeds)
        data, desc = mutation(seed.data, rng)
        return data, f"{seed.name}: {desc}", seed.suffix
    family.__name__ = mutation.__name__
    return family


def inside_gzip(rng: random.Random, seeds: list[Seed], marker: str) -> tuple[bytes, str, str]:
    """A generic mutation of the decompressed payload, recompressed (valid gzip)."""
    seed = rng.choice([s for s in seeds if len(s.data) < 100_000] or seeds)
    data, desc = rng.choice(mutate.GENERIC)(gzip.decompress(seed.data), rng)
    return gzip.compress(data, mtime=0), f"{seed.name} (inside gzip): {desc}", ".gz"


def _crafted(make: Callable[[random.Random], tuple[str, bytes]], suffix: str) -> Family:
    def family(rng: random.Random, seeds: list[Seed], marker: str) -> tuple[bytes, str, str]:
        desc, data = make(rng)
        return data, desc, suffix
    family.__name__ = make.__name__
    return family


def idx_crafted_gz(rng: random.Random, seeds: list[Seed], marker: str) -> tuple[bytes, str, str]:
    """A crafted IDX header (gzip-compressed), or a gzip bomb."""
    if rng.random() < 0.3:
        desc, data = crafted.idx_gz_bomb(rng)
        return data, desc, ".gz"
    desc, data = crafted.idx_file(rng)
    return gzip.compress(data, mtime=0), desc + " (gzip)", ".gz"


def image_crafted(rng: random.Random, seeds: list[Seed], marker: str) -> tuple[bytes, str, str]:
    """An image whose header lies about its size or format."""
    desc, data, suffix = crafted.image_file(rng)
    return data, desc, suffix


def pickle_code_exec(rng: random.Random, seeds: list[Seed], marker: str) -> tuple[bytes, str, str]:
    """A checkpoint whose pickle would create ``marker`` if any of its code ran."""
    name, pkl = rng.choice(pickles.code_exec_pickles(marker))
    if rng.random() < 0.2:  # a bare pickle, as the legacy format and plain pickle.dump write
        return pkl, f"code-exec bare pickle (no zip): {name}", ".pt"
    return pickles.checkpoint(pkl), f"code-exec pickle: {name}", ".pt"


def pickle_structural(rng: random.Random, seeds: list[Seed], marker: str
                      ) -> tuple[bytes, str, str]:
    """A checkpoint whose pickle is deep, odd or malformed."""
    name, pkl = rng.choice(pickles.structural_pickles(rng))
    return pickles.checkpoint(pkl), f"pickle: {name}", ".pt"


def pickle_tensor(rng: random.Random, seeds: list[Seed], marker: str) -> tuple[bytes, str, str]:
    """A checkpoint whose one tensor has odd storage, offset, size or stride."""
    roll = rng.random()
    desc, pkl, stores = (pickles.stride_zero_bomb() if roll < 0.1 else
                         pickles.negative_stride() if roll < 0.2 else pickles.tensor_pickle(rng))
    return pickles.checkpoint(pkl, stores), f"pickle: {desc}", ".pt"


def safetensors_crafted(rng: random.Random, seeds: list[Seed], marker: str
                        ) -> tuple[bytes, str, str]:
    """A safetensors file with an odd header."""
    desc, data = crafted.safetensors_file(rng)
    return data, desc, ".safetensors"


def onnx_crafted(rng: random.Random, seeds: list[Seed], marker: str) -> tuple[bytes, str, str]:
    """A seed ONNX model edited at the protobuf level to lie (tensors, attributes, graph)."""
    desc, data = onnxfmt.onnx_file(rng, seeds)
    return data, desc, ".onnx"


_GENERIC = [on_seed(m) for m in mutate.GENERIC]
_ZIP = [on_seed(m) for m in zipfmt.ZIP_MUTATIONS]
_CNNKIT = _GENERIC + _ZIP * 2 + [on_seed(cnnkit_mut.json_mutation)] * 5 + [
    on_seed(cnnkit_mut.npy_header_mutation)] * 2
_IMAGES = _GENERIC + [image_crafted] * 4

# reader name -> (seed group, mutation families; a family listed twice is drawn twice as often)
READERS: dict[str, tuple[str, list[Family]]] = {
    "load_state_dict": ("torch", _GENERIC + _ZIP * 2 + [pickle_code_exec] * 3
                        + [pickle_structural] * 3 + [pickle_tensor] * 4),
    "load_safetensors": ("safetensors", _GENERIC + [safetensors_crafted] * 5),
    "load_model": ("cnnkit_model", _CNNKIT),
    "load_weights": ("cnnkit_weights", _CNNKIT),
    "load_quantized": ("cnnkit_int8", _CNNKIT),
    "read_idx": ("idx", _GENERIC + [_crafted(crafted.idx_file, ".idx")] * 4),
    "read_idx_gz": ("idx_gz", _GENERIC + [inside_gzip] * 4 + [idx_crafted_gz] * 3),
    "load_image": ("image", _IMAGES),
    "image_dataset_from_directory": ("image", _IMAGES),
    "load_onnx": ("onnx", _GENERIC + [onnx_crafted] * 6),
}
try:  # Keras files need h5py (the keras extra)
    import h5py  # noqa: F401
except ImportError:
    pass
else:
    READERS.update({
        "load_keras": ("keras", _GENERIC + _ZIP * 2
                       + [on_seed(keras_mut.archive_config_mutation)] * 5),
        "load_keras_h5": ("keras_h5", _GENERIC * 2 + [on_seed(keras_mut.h5_config_mutation)] * 4),
        "load_keras_weights": ("keras_weights", _GENERIC),
    })


def random_case(reader: str, seed: int, index: int, seeds: list[Seed], marker: Path) -> Case:
    """The ``index``-th random case of ``reader`` for run seed ``seed``."""
    rng = random.Random(f"{seed}/{reader}/{index}")
    family = rng.choice(READERS[reader][1])
    data, desc, suffix = family(rng, seeds, str(marker))
    return Case(f"{reader}/{seed}/{index}", reader, data, suffix, f"[{family.__name__}] {desc}")


def truncation_case(reader: str, seed: int, source: Seed, offset: int) -> Case:
    """``source`` cut to its first ``offset`` bytes."""
    return Case(f"{reader}/{seed}/trunc/{source.name}/{offset}", reader, source.data[:offset],
                source.suffix, f"[sweep] {source.name}: truncate at {offset} of "
                               f"{len(source.data)}")


def truncation_sweep(reader: str, seed: int, seeds: list[Seed], limit: int) -> Iterator[Case]:
    """Every seed truncated at every offset (small files) or ``limit`` offsets (big ones)."""
    for source in seeds:
        for offset in mutate.truncation_offsets(len(source.data), limit):
            yield truncation_case(reader, seed, source, offset)


def case_from_id(case_id: str, seeds: dict[str, list[Seed]], marker: Path) -> Case:
    """Rebuild the case named ``case_id``."""
    parts = case_id.split("/")
    reader, seed = parts[0], int(parts[1])
    if reader not in READERS:
        raise ValueError(f"unknown reader {reader!r} in case id {case_id!r}")
    group = seeds[READERS[reader][0]]
    if len(parts) == 3:
        return random_case(reader, seed, int(parts[2]), group, marker)
    if len(parts) == 5 and parts[2] == "trunc":
        source = next((s for s in group if s.name == parts[3]), None)
        if source is None:
            raise ValueError(f"case {case_id!r}: no seed file {parts[3]!r} in this run")
        return truncation_case(reader, seed, source, int(parts[4]))
    raise ValueError(f"malformed case id {case_id!r}: expected reader/seed/index or "
                     f"reader/seed/trunc/<seed file>/<offset>")
