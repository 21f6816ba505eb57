"""The parent side: write cases to disk, run them in worker processes (restarting a worker
after a crash or a hang), and count results per reader."""

from __future__ import annotations

import json
import os
import select
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .cases import Case
from .seeds import Seed

CATEGORIES = ("clean", "crash", "hang", "wrong_type", "code_executed")
_STARTUP_S = 60.0  # a worker's imports on a loaded machine, before its first case


@dataclass
class Options:
    """How cases run."""

    timeout_s: int = 10
    memory_bytes: int = 2 << 30
    grace_s: float = 5.0  # beyond the in-child alarm, before the parent kills the worker


@dataclass
class Summary:
    """Counts per reader, and every failure with its case."""

    counts: dict[str, Counter] = field(default_factory=dict)
    records: list[dict[str, Any]] = field(default_factory=list)

    @property
    def failures(self) -> list[dict[str, Any]]:
        """The records of cases that did not end clean."""
        return [r for r in self.records if r["category"] != "clean"]


def materialize(case: Case, n: int, root: Path, valid_image: Seed | None) -> Path:
    """Write the case under ``root``: a file, or for the folder reader a class-folder tree
    holding the case beside one valid image."""
    if case.reader == "image_dataset_from_directory":
        top = root / f"{n:06d}"
        (top / "a").mkdir(parents=True)
        (top / "a" / f"case{case.suffix}").write_bytes(case.data)
        if valid_image is not None:
            (top / "b").mkdir()
            (top / "b" / f"ok{valid_image.suffix}").write_bytes(valid_image.data)
        return top
    path = root / f"{n:06d}{case.suffix}"
    path.write_bytes(case.data)
    return path


def write_manifest(cases: Iterable[Case], run_dir: Path, valid_image: Seed | None
                   ) -> list[dict]:
    """Case files under run_dir/cases and one manifest line per case (case ``n``, the n-th
    of ``cases``, must have been made with ``marker_path(run_dir, n)``)."""
    (run_dir / "cases").mkdir(parents=True, exist_ok=True)
    (run_dir / "markers").mkdir(exist_ok=True)
    entries = []
    for n, case in enumerate(cases):
        path = materialize(case, n, run_dir / "cases", valid_image)
        entries.append({"n": n, "id": case.id, "reader": case.reader, "path": str(path),
                        "desc": case.desc, "marker": str(marker_path(run_dir, n))})
    (run_dir / "manifest.jsonl").write_text("".join(json.dumps(e) + "\n" for e in entries))
    return entries


def marker_path(run_dir: Path, n: int) -> Path:
    """The file a code-executing case ``n`` would create."""
    return run_dir / "markers" / f"{n:06d}.marker"


def _child_env() -> dict[str, str]:
    import cnnkit

    paths = [str(Path(__file__).resolve().parents[1]), str(Path(cnnkit.__file__).parents[1])]
    env = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1",
               MKL_NUM_THREADS="1", CNNKIT_NUM_THREADS="1")
    env["PYTHONPATH"] = os.pathsep.join(paths + [env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    return env


def _read_results(proc: subprocess.Popen, first: int, opts: Options,
                  results: dict[int, dict]) -> tuple[int, bool]:
    """Collect result lines until the worker exits or stalls; (next case, stalled)."""
    fd, buf, nxt = proc.stdout.fileno(), b"", first
    deadline = time.monotonic() + _STARTUP_S + opts.timeout_s + opts.grace_s
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            return nxt, True
        ready, _, _ = select.select([fd], [], [], left)
        if not ready:
            continue
        chunk = os.read(fd, 1 << 16)
        if not chunk:
            return nxt, False
        buf += chunk
        *lines, buf = buf.split(b"\n")
        for line in lines:
            r = json.loads(line)
            results[r["n"]] = r
            nxt = r["n"] + 1
        deadline = time.monotonic() + opts.timeout_s + opts.grace_s


def _stderr_tail(path: Path) -> str:
    return path.read_bytes()[-600:].decode("utf-8", "replace") if path.exists() else ""


def _exit_text(rc: int) -> str:
    return f"killed by {signal.Signals(-rc).name}" if rc < 0 else f"exit status {rc}"


def run_worker(run_dir: Path, first: int, total: int, opts: Options,
               results: dict[int, dict]) -> int:
    """One worker from case ``first`` on; returns the case to restart from (after recording a
    crash or hang for the case the worker was on), or past the end when all ran."""
    err_path = run_dir / f"worker-{first:06d}.stderr"
    cmd = [sys.executable, "-m", "fuzz.worker", str(run_dir / "manifest.jsonl"), str(first),
           str(opts.timeout_s), str(opts.memory_bytes)]
    (run_dir / "cwd").mkdir(exist_ok=True)
    with open(err_path, "wb") as err:
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=err, cwd=run_dir / "cwd",
                                env=_child_env())
        nxt, stalled = _read_results(proc, first, opts, results)
        if stalled:
            proc.kill()
        rc = proc.wait()
        proc.stdout.close()
    if nxt >= total:
        return nxt
    if stalled:
        results[nxt] = {"n": nxt, "status": "hang", "type": "watchdog",
                        "message": f"no result within {opts.timeout_s + opts.grace_s:.0f} s"}
    else:
        results[nxt] = {"n": nxt, "status": "crash", "type": _exit_text(rc),
                        "message": _stderr_tail(err_path)}
    return nxt + 1


def run_cases(cases: Iterable[Case], run_dir: Path, opts: Options,
              valid_image: Seed | None = None) -> tuple[list[dict], dict[int, dict]]:
    """(manifest entries, results by case number) for ``cases``."""
    entries = write_manifest(cases, run_dir, valid_image)
    results: dict[int, dict] = {}
    start = 0
    while start < len(entries):
        start = run_worker(run_dir, start, len(entries), opts, results)
    return entries, results


def category(entry: dict, result: dict) -> str:
    """One of CATEGORIES for a finished case."""
    if result.get("marker") or Path(entry["marker"]).exists():
        return "code_executed"
    return {"ok": "clean", "allowed": "clean", "wrong": "wrong_type", "hang": "hang",
            "crash": "crash"}[result["status"]]


def summarize(entries: list[dict], results: dict[int, dict],
              save_failures: Path | None = None) -> Summary:
    """Counts per reader and the failing cases (copied to ``save_failures`` when given)."""
    summary = Summary()
    for e in entries:
        r = results.get(e["n"], {"status": "crash", "type": "no result", "message": ""})
        cat = category(e, r)
        counts = summary.counts.setdefault(e["reader"], Counter())
        counts["tried"] += 1
        counts[cat] += 1
        summary.records.append({"id": e["id"], "reader": e["reader"], "category": cat,
                                "status": r["status"], "type": r.get("type", ""),
                                "message": r.get("message", ""), "where": r.get("where", ""),
                                "desc": e["desc"]})
        if cat != "clean" and save_failures is not None:
            _save_case(Path(e["path"]), save_failures, e["id"])
    return summary


def _save_case(path: Path, folder: Path, case_id: str) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / (case_id.replace("/", "__") + path.suffix)
    if path.is_dir():
        shutil.copytree(path, target, dirs_exist_ok=True)
    elif path.exists():
        shutil.copyfile(path, target)
