"""The ``cnnkit`` command line: train, evaluate, predict, summary, serve, calc, explain,
report, export, convert, prune, distill, quantize, detect, segment.

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
from .analysis_commands import cmd_calc, cmd_explain, cmd_report
from .commands import cmd_evaluate, cmd_predict, cmd_summary, cmd_train
from .data import DATASETS, load_dataset
from .deploy_commands import cmd_distill, cmd_prune
from .errors import EXIT_USAGE, UsageError, guarded
from .interchange import cmd_convert, cmd_export
from .options import build_parser as _build_parser
from .quantize_cmd import add_parser as _add_quantize
from .quantize_cmd import cmd_quantize
from .recipes import DEFAULTS, augmentation, schedule
from .serve_cmd import cmd_serve
from .vision import cmd_detect, cmd_segment

__all__ = ["main", "build_parser", "UsageError", "load_dataset", "augmentation", "schedule",
           "DATASETS", "DEFAULTS"]

COMMANDS = {"train": cmd_train, "evaluate": cmd_evaluate, "predict": cmd_predict,
            "summary": cmd_summary, "serve": cmd_serve, "calc": cmd_calc,
            "explain": cmd_explain, "report": cmd_report, "export": cmd_export,
            "convert": cmd_convert, "prune": cmd_prune, "distill": cmd_distill,
            "quantize": cmd_quantize, "detect": cmd_detect, "segment": cmd_segment}


def build_parser():  # noqa: ANN201 - argparse.ArgumentParser
    """The ``cnnkit`` argument parser."""
    return _build_parser(COMMANDS, [lambda sub: _add_quantize(sub, cmd_quantize)])


def _run(argv: Sequence[str] | None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    args.raw_argv = list(sys.argv[1:] if argv is None else argv)
    if not getattr(args, "command", None):  # plain `cnnkit`: the short usage, as argparse
        parser.print_usage(sys.stderr)
        print("cnnkit: error: a command is required: train, evaluate, predict, summary, serve, "
              "calc, explain, report, export, convert, prune, distill, quantize, detect or "
              "segment (cnnkit --help for more)", file=sys.stderr)
        return EXIT_USAGE
    if args.command in ("train", "evaluate") and os.environ.get("CNNKIT_MALLOC_TUNE") != "0":
        tune_allocator()  # the command owns its process: reuse freed pages (fewer page faults)
    return int(args.func(args) or 0)


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``cnnkit`` with ``argv`` (default: sys.argv[1:]); returns the exit status."""
    status = guarded(lambda: _run(argv))
    comm = sys.modules.get("cnnkit.distributed.comm")
    if status and comm is not None:  # one rank's error ends the MPI job, not a hang
        comm.abort(status)
    return status
