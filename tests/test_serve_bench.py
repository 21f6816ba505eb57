"""The load test's short form: bench/serve_load.py against a real server with 128 concurrent
keep-alive clients; every answer must be a 200 with a prediction (no timing asserted)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

pytest.importorskip("uvicorn", reason="cnnkit serve needs the serve extra (Uvicorn)")
pytest.importorskip("PIL", reason="the load test sends PNG images")

from serve_helpers import tiny_cnn  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
import serve_load  # noqa: E402


def test_load_short_form(tmp_path):
    tiny_cnn(seed=6).save(tmp_path / "m.cnnkit")
    rows = serve_load.run_setting(str(tmp_path / "m.cnnkit"), True, [128], 20.0, 384,
                                  serve_load._pngs(32))
    (row,) = rows
    assert row["errors"] == 0 and row["requests"] == 384
    assert 1 <= row["mean_batch"] <= 32  # batched, never above the configured size
    assert "Throughput with batching" in serve_load.markdown(rows)


def test_both_modes_alternately_short_form(tmp_path):
    """The one-command form: both servers side by side, two alternating rounds at 8 clients;
    every answer a 200, batch-1 serving really one sample per call, CPU figures present."""
    tiny_cnn(seed=7).save(tmp_path / "m.cnnkit")
    rows = serve_load.run_both(str(tmp_path / "m.cnnkit"), [8], 20.0, 160,
                               serve_load._pngs(16), rounds=2)
    on, off = sorted(rows, key=lambda r: not r["batching"])
    assert on["batching"] and not off["batching"]
    assert on["requests"] == off["requests"] == 160 and on["errors"] == off["errors"] == 0
    assert off["mean_batch"] == 1.0 and 1 <= on["mean_batch"] <= 8
    assert on["client_cpu_ms"] > 0 and off["server_cpu_ms"] > 0
    assert "8 clients" in serve_load.markdown(rows)
