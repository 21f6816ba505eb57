"""Load test of ``cnnkit serve`` on loopback: throughput and latency percentiles at several
numbers of concurrent clients, with dynamic batching on and off (batch-1 serving).

    python bench/serve_load.py MODEL.cnnkit [--clients 1 8 32 128] [--seconds 8]
                               [--requests 4000] [--rounds 2] [--threads 1]

Two servers (``cnnkit serve``) run side by side, one batching (``--max-batch-size 32
--max-wait-ms 5``) and one serving batch 1 (``--max-batch-size 1 --max-wait-ms 0``), with the
same settings otherwise. For each number of clients the two are measured alternately, in
``--rounds`` rounds ordered on, off, off, on, ... (so a machine that gets busier or quieter
during the run affects both alike), each round at most ``--seconds / rounds`` seconds or
``--requests / rounds`` requests; the figures add the rounds up.

The clients are keep-alive HTTP/1.1 connections in this process, closed loop (each sends one
28x28 PNG digit and waits for the answer), written directly on asyncio's transports (no stream
objects) to keep their own CPU small, since they share the machine with the server: the CPU
this process spends per request (user + system, getrusage) is printed with the results.
Every answer is checked (status 200 and a prediction in the body).

Last, the CPU of the parts of a request is measured in this process on one thread
(:func:`cpu_breakdown`): the model per image at batch 1 and 32, the drift monitor, and the
app's own work per request (the model call replaced by its answer): the figures that bound
what batching can gain.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import logging
import os
import platform
import resource
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
ON, OFF = (32, 5.0), (1, 0.0)  # (max batch size, max wait ms)


def _pngs(count: int) -> list[bytes]:
    """PNG files of held-out mnist5k digits (a varied stream: the drift monitor stays quiet)."""
    from PIL import Image

    from cnnkit.datasets import mnist5k

    (_, _), (xv, _) = mnist5k.load_data()
    out = []
    for i in range(count):
        buf = io.BytesIO()
        Image.fromarray(xv[i % len(xv)].reshape(28, 28).astype(np.uint8)).save(buf, "PNG")
        out.append(buf.getvalue())
    return out


def _cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _own_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(model: str, port: int, batch: int, wait_ms: float, threads: int = 1
                 ) -> subprocess.Popen:
    env = dict(os.environ, PYTHONPATH=str(ROOT / "src"))
    proc = subprocess.Popen([sys.executable, "-m", "cnnkit.cli", "serve", f"m={model}",
                             "--port", str(port), "--max-batch-size", str(batch),
                             "--max-wait-ms", str(wait_ms), "--queue-length", "1024",
                             "--reload-interval", "0", "--threads", str(threads),
                             "--log-level", "warning"], env=env)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=2) as r:
                if r.status == 200:
                    return proc
        except OSError:
            time.sleep(0.2)
    proc.kill()
    raise RuntimeError("the server did not start")


def stop_server(proc: subprocess.Popen) -> None:
    proc.send_signal(signal.SIGTERM)
    proc.wait(60)


class _Client(asyncio.Protocol):
    """One keep-alive connection sending requests one after another (closed loop)."""

    def __init__(self, shared: dict, done: asyncio.Future):
        self.s, self.done, self.buf, self.t = shared, done, b"", 0.0
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self._send()

    def _send(self) -> None:
        s = self.s
        if s["budget"] <= 0 or time.perf_counter() >= s["stop_at"]:
            self.transport.close()  # type: ignore[union-attr]
            return
        s["budget"] -= 1
        self.t = time.perf_counter()
        self.transport.write(s["requests"][s["budget"] % len(s["requests"])])  # type: ignore

    def data_received(self, data: bytes) -> None:
        self.buf += data
        end = self.buf.find(b"\r\n\r\n")
        if end < 0:
            return
        head = self.buf[:end].lower()
        at = head.find(b"content-length:")
        length = int(head[at + 15:head.find(b"\r\n", at) if b"\r\n" in head[at:] else None]
                     ) if at >= 0 else 0
        if len(self.buf) < end + 4 + length:
            return
        body, self.buf = self.buf[end + 4:end + 4 + length], self.buf[end + 4 + length:]
        self.s["lat"].append(time.perf_counter() - self.t)
        if not head.startswith(b"http/1.1 200") or b"predictions" not in body:
            self.s["errors"].append(head.split(b"\r\n")[0].decode())
        self._send()

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.done.done():
            self.done.set_result(None)


def requests_for(bodies: list[bytes]) -> list[bytes]:
    """The whole HTTP requests (head and PNG body) the clients send."""
    return [(f"POST /v1/models/m:predict?top_k=3 HTTP/1.1\r\nHost: 127.0.0.1\r\n"
             f"Content-Type: image/png\r\nContent-Length: {len(b)}\r\n\r\n").encode() + b
            for b in bodies]


async def _load(port: int, reqs: list[bytes], clients: int, seconds: float, requests: int
                ) -> dict:
    loop = asyncio.get_running_loop()
    shared = {"budget": requests, "requests": reqs, "lat": [], "errors": [],
              "stop_at": time.perf_counter() + seconds}
    dones = [loop.create_future() for _ in range(clients)]
    start = time.perf_counter()
    for d in dones:
        await loop.create_connection(lambda d=d: _Client(shared, d), "127.0.0.1", port)
    await asyncio.gather(*dones)
    wall = time.perf_counter() - start
    return {"wall": wall, "lat": shared["lat"], "errors": len(shared["errors"])}


def _batches(port: int) -> tuple[float, float]:
    """(model calls, samples) from the server's /metrics."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
        text = r.read().decode()
    calls = samples = 0.0
    for line in text.splitlines():
        if line.startswith("cnnkit_batch_size_count"):
            calls = float(line.split()[-1])
        elif line.startswith("cnnkit_batch_size_sum"):
            samples = float(line.split()[-1])
    return calls, samples


def measure(port: int, pid: int, reqs: list[bytes], clients: int, seconds: float,
            requests: int) -> dict:
    """One round against one server: latencies, wall time, server / client CPU, batches."""
    c0, s0 = _batches(port)
    cpu0, own0 = _cpu_seconds(pid), _own_cpu()
    r = asyncio.run(_load(port, reqs, clients, seconds, requests))
    r["server_cpu"], r["client_cpu"] = _cpu_seconds(pid) - cpu0, _own_cpu() - own0
    c1, s1 = _batches(port)
    r["calls"], r["samples"] = c1 - c0, s1 - s0
    return r


def summarize(batching: bool, clients: int, rounds: list[dict]) -> dict:
    ms = np.array([v for r in rounds for v in r["lat"]]) * 1000
    n = len(ms)
    wall = sum(r["wall"] for r in rounds)
    return {"batching": batching, "clients": clients, "requests": n,
            "errors": sum(r["errors"] for r in rounds), "rps": n / wall,
            "p50": float(np.percentile(ms, 50)), "p95": float(np.percentile(ms, 95)),
            "p99": float(np.percentile(ms, 99)),
            "mean_batch": sum(r["samples"] for r in rounds) / max(sum(r["calls"]
                                                                      for r in rounds), 1),
            "server_cpu_ms": sum(r["server_cpu"] for r in rounds) * 1000 / max(n, 1),
            "client_cpu_ms": sum(r["client_cpu"] for r in rounds) * 1000 / max(n, 1)}


def run_setting(model: str, batching: bool, levels: list[int], seconds: float,
                requests: int, body: list[bytes], threads: int = 1) -> list[dict]:
    """One server (batching on or off) measured at each number of clients."""
    port = _free_port()
    proc = start_server(model, port, *(ON if batching else OFF), threads)
    reqs = requests_for(body)
    try:
        asyncio.run(_load(port, reqs, 4, 1.0, 200))  # warm-up
        return [summarize(batching, c, [measure(port, proc.pid, reqs, c, seconds, requests)])
                for c in levels]
    finally:
        stop_server(proc)


def run_both(model: str, levels: list[int], seconds: float, requests: int,
             body: list[bytes], rounds: int = 2, threads: int = 1) -> list[dict]:
    """Both servers side by side, measured alternately (see the module docstring)."""
    servers = {}
    reqs = requests_for(body)
    try:
        for batching in (True, False):
            port = _free_port()
            servers[batching] = (port, start_server(model, port, *(ON if batching else OFF),
                                                    threads))
            asyncio.run(_load(port, reqs, 4, 1.0, 200))  # warm-up
        rows = []
        for c in levels:
            got: dict[bool, list[dict]] = {True: [], False: []}
            for i in range(rounds):
                for batching in ((True, False) if i % 2 == 0 else (False, True)):
                    port, proc = servers[batching]
                    got[batching].append(measure(port, proc.pid, reqs, c, seconds / rounds,
                                                 max(1, requests // rounds)))
            for batching in (True, False):
                rows.append(summarize(batching, c, got[batching]))
                print(json.dumps(rows[-1]), flush=True)
        return rows
    finally:
        for _, proc in servers.values():
            stop_server(proc)


def _thread_cpu_us(fn, n: int, repeats: int = 5) -> float:
    """Best-of-``repeats`` CPU microseconds of this thread per call of ``fn`` (thread_time:
    time spent waiting for a busy machine's cores is not counted)."""
    fn()
    best = float("inf")
    for _ in range(repeats):
        t = time.thread_time()
        for _ in range(n):
            fn()
        best = min(best, (time.thread_time() - t) / n)
    return best * 1e6


def cpu_breakdown(model: str, pngs: list[bytes]) -> dict:
    """In-process CPU per request of the parts, on one thread with one kernel thread: the
    model call (the batch-invariant plan with embeddings, then probabilities) per image at
    batch 1 and 32; the after-batch hook (metrics, drift monitor's observe) per image; the
    app's own work for one PNG request (Starlette routing, body, decoding, JSON, metrics)
    with the model call replaced by a finished future holding its answer."""
    from cnnkit.kernels import parallel
    from cnnkit.serve.app import Server
    from cnnkit.serve.config import ServeConfig

    parallel.limit_this_thread(1)
    # the same 32 digits observed over and over do look like drift: no alarm lines here
    logging.getLogger("cnnkit.monitor").setLevel(logging.ERROR)
    srv = Server({"m": Path(model)}, ServeConfig(reload_interval_s=0))
    srv.start()
    entry = srv.registry.get("m")  # type: ignore[union-attr]
    x32 = np.stack([_gray(p) for p in (pngs * 32)[:32]]).astype(np.float32)[..., None]
    x1 = x32[:1]
    y1, e1 = entry._run(x1)  # what the batcher calls: the plan, then probabilities
    y32, e32 = entry._run(x32)
    out = {"model_b1_us": _thread_cpu_us(lambda: entry._run(x1), 100),
           "model_b32_us_per_image": _thread_cpu_us(lambda: entry._run(x32), 10) / 32}
    if entry.monitor is not None:
        out["observe_b1_us"] = _thread_cpu_us(lambda: entry._after_batch(x1, y1, e1, 0.0), 300)
        out["observe_b32_us_per_image"] = _thread_cpu_us(
            lambda: entry._after_batch(x32, y32, e32, 0.0), 100) / 32
    try:
        out["app_us"] = _app_us(srv, entry, pngs[0], (y1, e1))
    finally:
        srv.stop()
        parallel.limit_this_thread(None)
    return out


def _app_us(srv: Any, entry: Any, png: bytes, answer: tuple) -> float:
    """CPU us of one PNG predict request through the ASGI app, the model call replaced by
    ``answer`` (a finished future)."""
    from concurrent.futures import Future

    class Finished:
        depth = 0

        def submit(self, x: np.ndarray) -> Future:
            f: Future = Future()
            f.set_result(answer)
            return f

    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1",
             "method": "POST", "scheme": "http", "path": "/v1/models/m:predict",
             "raw_path": b"/v1/models/m:predict", "query_string": b"top_k=3", "root_path": "",
             "headers": [(b"host", b"127.0.0.1"), (b"content-type", b"image/png"),
                         (b"content-length", str(len(png)).encode())],
             "client": ("127.0.0.1", 1), "server": ("127.0.0.1", 2), "state": {}}

    async def receive() -> dict:
        return {"type": "http.request", "body": png, "more_body": False}

    async def send(message: dict) -> None:
        pass

    real, entry.batcher = entry.batcher, Finished()
    loop = asyncio.new_event_loop()
    try:
        return _thread_cpu_us(lambda: loop.run_until_complete(srv.app(scope, receive, send)),
                              500)
    finally:
        loop.close()
        entry.batcher = real


def _gray(png: bytes) -> np.ndarray:
    from PIL import Image

    return np.asarray(Image.open(io.BytesIO(png)).convert("L"))


def markdown(rows: list[dict]) -> str:
    out = ["| batching | clients | requests | req/s | p50 ms | p95 ms | p99 ms | mean batch "
           "| server CPU ms/req | client CPU ms/req | errors |",
           "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in sorted(rows, key=lambda r: (not r["batching"], r["clients"])):
        out.append(f"| {'on (32, 5 ms)' if r['batching'] else 'off (batch 1)'} | "
                   f"{r['clients']} | {r['requests']} | {r['rps']:.0f} | {r['p50']:.1f} | "
                   f"{r['p95']:.1f} | {r['p99']:.1f} | {r['mean_batch']:.1f} | "
                   f"{r['server_cpu_ms']:.2f} | {r.get('client_cpu_ms', float('nan')):.2f} | "
                   f"{r['errors']} |")
    on = {r["clients"]: r for r in rows if r["batching"]}
    off = {r["clients"]: r for r in rows if not r["batching"]}
    ratios = ", ".join(f"{c} clients {on[c]['rps'] / off[c]['rps']:.2f}x" for c in sorted(on)
                       if c in off)
    cpu = ", ".join(f"{c} clients {off[c]['server_cpu_ms'] / on[c]['server_cpu_ms']:.2f}x"
                    for c in sorted(on) if c in off)
    out.append("")
    out.append(f"Throughput with batching / batch-1 serving: {ratios}.")
    out.append(f"Server CPU per request, batch-1 / batching: {cpu}.")
    return "\n".join(out)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("model")
    p.add_argument("--clients", type=int, nargs="+", default=[1, 8, 32, 128])
    p.add_argument("--seconds", type=float, default=8.0, help="per setting, all rounds")
    p.add_argument("--requests", type=int, default=4000, help="per setting, all rounds")
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--threads", type=int, default=1, help="the servers' --threads")
    args = p.parse_args()
    sys.path.insert(0, str(ROOT / "src"))
    body = _pngs(256)
    cpu = next((line.split(":", 1)[1].strip() for line in
                Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.machine())
    print(f"# {cpu}, {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}, "
          f"server --threads {args.threads}", flush=True)
    rows = run_both(args.model, args.clients, args.seconds, args.requests, body, args.rounds,
                    args.threads)
    print(f"# load average after: {os.getloadavg()[0]:.1f}")
    print(markdown(rows))
    parts = cpu_breakdown(args.model, body)
    print("\nCPU per request in-process (one thread, best of 5, microseconds): " +
          ", ".join(f"{k} {v:.0f}" for k, v in parts.items()))


if __name__ == "__main__":
    main()
