"""Command line: ``python -m tests.fuzz --cases N --seed S`` (from the repository root, with
cnnkit importable), or ``--replay ID`` to run single cases again. Exit status 1 when any case
failed."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from .cases import READERS
from .driver import format_failures, format_table, fuzz, replay
from .runner import Options


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m tests.fuzz", description=__doc__)
    p.add_argument("--cases", type=int, default=200, help="random cases per reader")
    p.add_argument("--seed", type=int, default=0, help="run seed (cases and seed files)")
    p.add_argument("--sweep", type=int, default=256,
                   help="truncation offsets per seed file (every offset below this size)")
    p.add_argument("--readers", nargs="+", choices=sorted(READERS), help="default: all")
    p.add_argument("--timeout", type=int, default=10, help="seconds per case")
    p.add_argument("--memory-gib", type=float, default=2.0, help="worker address-space cap")
    p.add_argument("--replay", nargs="+", metavar="ID", help="run only these case ids")
    p.add_argument("--keep", type=Path, help="run in this folder and keep the case files")
    p.add_argument("--save-failures", type=Path, help="copy failing case files here")
    p.add_argument("--examples", type=int, default=1, help="example ids per failure group")
    p.add_argument("--json", type=Path, help="write counts and failures as JSON here")
    return p


def main(argv: list[str] | None = None) -> int:
    """Fuzz (or replay), print the table and failure groups; 1 when anything failed."""
    args = _parser().parse_args(argv)
    opts = Options(timeout_s=args.timeout, memory_bytes=int(args.memory_gib * (1 << 30)))
    if args.keep:
        args.keep.mkdir(parents=True, exist_ok=True)
    if args.replay:
        summary = replay(args.replay, opts, args.keep)
        for r in summary.records:
            print(f"{r['id']}: {r['category']} ({r['status']}) {r['type']}: {r['message']}\n"
                  f"    case: {r['desc']}\n    raised at: {r['where']}")
    else:
        summary = fuzz(args.seed, args.cases, args.sweep, args.readers, opts, args.keep,
                       args.save_failures)
    print(format_table(summary))
    if summary.failures and not args.replay:
        print("\nfailures:\n" + format_failures(summary, args.examples))
    if args.json:
        args.json.write_text(json.dumps({"counts": summary.counts,
                                         "failures": summary.failures}, indent=1))
    return 1 if summary.failures else 0


if __name__ == "__main__":
    sys.exit(main())
