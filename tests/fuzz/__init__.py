"""A seeded fuzzer for cnnkit's file readers.

Every case is a file derived from a real seed file (made in the run, or found in ../shared) by
one mutation, or a crafted file (hostile pickles, lying headers, decompression bombs). Cases
run in a child process under a memory limit and a per-case timeout; the parent counts, per
reader, clean results (a normal return or an allowed exception) and failures: crashes, hangs,
wrong exception types and code executed by a crafted file.

From the repository root, with cnnkit importable (``PYTHONPATH=src``)::

    python -m tests.fuzz --cases 300 --seed 1            # per-reader table, failure groups
    python -m tests.fuzz --readers load_state_dict --save-failures /tmp/bad
    python -m tests.fuzz --replay load_model/1/17 read_idx_gz/1/trunc/labels.idx.gz/9

A case id is ``reader/seed/index`` (random mutation) or ``reader/seed/trunc/<seed>/<offset>``
(truncation sweep); replaying it rebuilds the same bytes and prints where the exception came
from. ``CNNKIT_SHARED_DIR`` points at another shared/ folder for the real seed files.

Modules: mutate (format-blind), zipfmt (zip fields, members, bombs), pickles (hand-encoded
pickles, checkpoints), crafted (safetensors, IDX, image headers), onnxfmt (ONNX seeds and
protobuf-level lies), cnnkit_mut (.cnnkit JSON and
.npy headers), seeds, cases (families per reader, ids), runner (parent), worker (child),
driver (a run end to end).
"""
