"""The file-reader fuzzer (tests/fuzz): its own accounting checked against cases whose outcome
is known by construction, its attack corpus checked to be live, then a modest seeded run of
every reader that must end with zero crashes, hangs, wrong exception types and code executed.
``python -m tests.fuzz --cases N --seed S`` runs longer campaigns."""

from __future__ import annotations

import gzip
import io
import pickle
import zipfile
import zlib

import pytest
from fuzz import cases, crafted, mutate, pickles, zipfmt
from fuzz.cases import Case
from fuzz.driver import category_totals, format_failures, format_table, fuzz
from fuzz.runner import Options, run_cases, summarize

pytest.importorskip("PIL")


def _selftest(name: str, command: str) -> Case:
    return Case(f"_selftest/0/{name}", "_selftest", command.encode(), ".txt", name)


def test_harness_counts_each_outcome(tmp_path):
    """Known misbehaviour lands in the right column, and the worker restarts after a crash
    or a hang to run the cases after it."""
    marker = tmp_path / "markers" / "000006.marker"
    plan = [("ok", "ok"), ("value", "raise value"), ("key", "raise key"), ("segv", "segv"),
            ("after-crash", "ok"), ("spin", "spin"), ("touch", f"touch {marker}"),
            ("memory", "memory"), ("stuck", "stuck"), ("after-hang", "ok")]
    entries, results = run_cases([_selftest(n, c) for n, c in plan], tmp_path,
                                 Options(timeout_s=1, memory_bytes=2 << 30, grace_s=1))
    got = {r["id"].split("/")[-1]: r["category"] for r in summarize(entries, results).records}
    assert got == {"ok": "clean", "value": "clean", "key": "wrong_type", "segv": "crash",
                   "after-crash": "clean", "spin": "hang", "touch": "code_executed",
                   "memory": "wrong_type", "stuck": "hang", "after-hang": "clean"}


class _Permissive(pickle.Unpickler):
    """An unpickler that resolves any global (torch's as stand-ins): what a naive reader does."""

    def find_class(self, module, name):
        if module.startswith("torch"):
            return lambda *args: args
        return super().find_class(module, name)

    def persistent_load(self, pid):
        return pid


def test_code_exec_pickles_really_run_code(tmp_path):
    """Each crafted pickle creates its marker under a permissive unpickler, so a reader that
    leaves the marker absent refused it (the fuzzer's code-executed count means something)."""
    marker = tmp_path / "marker"
    for name, pkl in pickles.code_exec_pickles(str(marker)):
        marker.unlink(missing_ok=True)
        try:
            _Permissive(io.BytesIO(pkl)).load()
        except Exception:  # only the side effect matters here
            pass
        assert marker.exists(), name


def test_bomb_expands_a_thousandfold():
    total = 8 << 20
    raw = zipfmt.bomb_payload(b"HEAD", total)
    out = zlib.decompressobj(-15).decompress(raw)
    assert out[:4] == b"HEAD" and not any(out[4:])
    assert total - (1 << 20) <= len(out) <= total and len(raw) * 500 < total
    gz = crafted.gzip_wrap(zipfmt.bomb_payload(b"x", 2 << 20))
    assert gzip.GzipFile(fileobj=io.BytesIO(gz)).read(1) == b"x"


def test_zip_writer_is_read_back_by_zipfile():
    members = [zipfmt.stored("a/data.pkl", b"12345"), zipfmt.deflated("b", b"xyz" * 100)]
    with zipfile.ZipFile(io.BytesIO(zipfmt.build(members))) as z:
        assert z.testzip() is None
        assert {n: z.read(n) for n in z.namelist()} == {"a/data.pkl": b"12345",
                                                        "b": b"xyz" * 100}


def test_truncation_offsets():
    assert mutate.truncation_offsets(5, 10) == [0, 1, 2, 3, 4]
    offs = mutate.truncation_offsets(10_000, 100)
    assert offs[:25] == list(range(25)) and len(offs) == 100 and offs[-1] < 10_000


def test_a_case_id_gives_the_same_bytes(tmp_path):
    seeds = {"torch": [], "image": [], "safetensors": []}
    from fuzz.seeds import safetensors_seeds

    seeds["safetensors"] = safetensors_seeds()
    for i in range(20):
        a = cases.random_case("load_safetensors", 7, i, seeds["safetensors"], tmp_path / "m")
        b = cases.case_from_id(a.id, seeds, tmp_path / "m")
        assert a == b
    with pytest.raises(ValueError, match="unknown reader"):
        cases.case_from_id("nope/0/1", seeds, tmp_path / "m")


def _report(summary) -> str:
    return format_table(summary) + "\n" + format_failures(summary, examples=3)


def _assert_no_failures(summary) -> None:
    print(_report(summary))
    totals = category_totals(summary)
    assert totals["tried"] > 0
    assert not summary.failures, "fuzz failures:\n" + format_failures(summary, examples=3)


def test_fuzz_every_reader():
    """A seeded run (truncation sweeps + mutations + crafted files) of every reader."""
    _assert_no_failures(fuzz(seed=0, n_cases=60, sweep_limit=24))


@pytest.mark.slow
def test_fuzz_every_reader_long():
    """A longer campaign with other seeds: ``pytest -m slow tests/test_fuzz.py``."""
    for seed in (1, 2):
        _assert_no_failures(fuzz(seed=seed, n_cases=300, sweep_limit=256))
