"""The ``cnnkit`` command line: train, evaluate, predict, summary, detect, segment.

A user's mistake (missing or damaged file, not an image, unknown architecture or data set, bad
option value, a model that does not fit the data, an output path that cannot be written)
prints one line ``cnnkit: error: ...`` and exits with status 2, without a traceback; see
:mod:`cnnkit.cli.errors` for the exit statuses and ``CNNKIT_DEBUG=1``.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence

from ..kernels.parallel import tune_allocator
from .commands import cmd_evaluate, cmd_predict, cmd_summary, cmd_train
from .data import DATASETS, load_dataset
from .errors import EXIT_USAGE, UsageError, guarded
from .options import build_parser as _build_parser
from .recipes import DEFAULTS, augmentation, schedule
from .vision import cmd_detect, cmd_segment

__all__ = ["main", "build_parser", "UsageError", "load_dataset", "augmentation", "schedule",
           "DATASETS", "DEFAULTS"]

COMMANDS = {"train": cmd_train, "evaluate": cmd_evaluate, "predict": cmd_predict,
            "summary": cmd_summary, "detect": cmd_detect, "segment": cmd_segment}


def build_parser():  # noqa: ANN201 - argparse.ArgumentParser
    """The ``cnnkit`` argument parser."""
    return _build_parser(COMMANDS)


def _run(argv: Sequence[str] | None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "command", None):  # plain `cnnkit`: the short usage, as argparse
        parser.print_usage(sys.stderr)
        print("cnnkit: error: a command is required: train, evaluate, predict, summary, "
              "detect or segment "
              "(cnnkit --help for more)", file=sys.stderr)
        return EXIT_USAGE
    if args.command in ("train", "evaluate") and os.environ.get("CNNKIT_MALLOC_TUNE") != "0":
        tune_allocator()  # the command owns its process: reuse freed pages (fewer page faults)
    return int(args.func(args) or 0)


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``cnnkit`` with ``argv`` (default: sys.argv[1:]); returns the exit status."""
    return guarded(lambda: _run(argv))
