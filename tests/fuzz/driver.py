"""One fuzz run end to end: seeds, cases, workers, and the per-reader report."""

from __future__ import annotations

import re
import tempfile
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

from .cases import READERS, Case, case_from_id, random_case, truncation_sweep
from .runner import CATEGORIES, Options, Summary, marker_path, run_cases, summarize
from .seeds import Seed, all_seeds


def build_cases(seed: int, readers: list[str], n_cases: int, sweep_limit: int,
                seeds: dict[str, list[Seed]], run_dir: Path) -> Iterator[Case]:
    """Per reader: the truncation sweep of its seeds, then ``n_cases`` random cases (made one
    at a time: a run's cases can total gigabytes)."""
    n = 0
    for reader in readers:
        group = seeds[READERS[reader][0]]
        if not group:
            continue
        if sweep_limit > 0:
            for case in truncation_sweep(reader, seed, group, sweep_limit):
                n += 1
                yield case
        for i in range(n_cases):
            n += 1
            yield random_case(reader, seed, i, group, marker_path(run_dir, n - 1))


def _valid_image(seeds: dict[str, list[Seed]]) -> Seed | None:
    return next(iter(seeds.get("image", [])), None)


def fuzz(seed: int, n_cases: int, sweep_limit: int, readers: list[str] | None = None,
         opts: Options | None = None, run_dir: Path | None = None,
         save_failures: Path | None = None) -> Summary:
    """Run the fuzzer; the summary holds counts per reader and every failure."""
    readers = readers or list(READERS)
    opts = opts or Options()
    with tempfile.TemporaryDirectory(prefix="cnnkit-fuzz-") as tmp:
        run_dir = Path(run_dir or tmp)
        seeds = all_seeds(seed)
        cases = build_cases(seed, readers, n_cases, sweep_limit, seeds, run_dir)
        entries, results = run_cases(cases, run_dir, opts, _valid_image(seeds))
        return summarize(entries, results, save_failures)


def replay(case_ids: list[str], opts: Options | None = None,
           run_dir: Path | None = None) -> Summary:
    """Run only the named cases (ids as printed by a fuzz run)."""
    opts = opts or Options()
    with tempfile.TemporaryDirectory(prefix="cnnkit-fuzz-") as tmp:
        run_dir = Path(run_dir or tmp)
        by_seed: dict[int, dict[str, list[Seed]]] = {}
        cases = []
        for n, case_id in enumerate(case_ids):
            s = int(case_id.split("/")[1])
            if s not in by_seed:
                by_seed[s] = all_seeds(s)
            cases.append(case_from_id(case_id, by_seed[s], marker_path(run_dir, n)))
        image = _valid_image(next(iter(by_seed.values()))) if by_seed else None
        entries, results = run_cases(cases, run_dir, opts, image)
        return summarize(entries, results)


def format_table(summary: Summary) -> str:
    """Counts per reader: tried, clean, and each failure category."""
    head = ("reader", "tried") + CATEGORIES
    rows = [head] + [(r, *(str(c[k]) for k in ("tried",) + CATEGORIES))
                     for r, c in summary.counts.items()]
    widths = [max(len(row[i]) for row in rows) for i in range(len(head))]
    return "\n".join("  ".join(v.ljust(w) if i == 0 else v.rjust(w)
                               for i, (v, w) in enumerate(zip(row, widths, strict=True)))
                     for row in rows)


def _signature(f: dict) -> tuple[str, str, str, str]:
    """Failures that differ only in numbers, quoted names or paths group together."""
    message = f["message"].split("\n")[-1] if f["category"] == "crash" else f["message"]
    message = re.sub(r"'[^']*'|/\S+|\d+", "_", message)
    return f["reader"], f["category"], f["type"], message[:90]


def format_failures(summary: Summary, examples: int = 1) -> str:
    """Failures grouped by (reader, category, exception type, message start), with counts and
    example cases (id and mutation) to replay."""
    groups: dict[tuple, list[dict]] = {}
    for f in summary.failures:
        groups.setdefault(_signature(f), []).append(f)
    lines = []
    for (reader, cat, typ, msg), fs in sorted(groups.items(), key=lambda kv: -len(kv[1])):
        lines.append(f"{reader}: {len(fs)} x {cat} {typ}: {msg}")
        for f in fs[:examples]:
            lines.append(f"    e.g. {f['id']}  {f['desc'][:160]}\n         -> {f['message'][:160]}")
    return "\n".join(lines)


def category_totals(summary: Summary) -> Counter:
    """Counts summed over readers."""
    total: Counter = Counter()
    for c in summary.counts.values():
        total.update(c)
    return total
