"""``cnnkit serve`` as a real process on loopback, driven by a real HTTP client: answers
bit for bit equal to predicting alone under concurrency, limits and errors, metrics parsed
by prometheus_client, faults (disconnects, slow uploads, bursts, a model replaced during
load) and graceful shutdown."""

from __future__ import annotations

import json
import os
import signal
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

pytest.importorskip("starlette", reason="cnnkit serve needs the serve extra (Starlette)")
pytest.importorskip("uvicorn", reason="cnnkit serve needs the serve extra (Uvicorn)")
pytest.importorskip("PIL", reason="image requests need Pillow")

from serve_helpers import free_port, get, png_bytes, post, server, tiny_cnn  # noqa: E402

from cnnkit.datasets import mnist5k  # noqa: E402
from cnnkit.models import load_model  # noqa: E402
from cnnkit.monitor import build_profile, profile_path  # noqa: E402


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    d = tmp_path_factory.mktemp("serve")
    a, b = tiny_cnn(seed=1), tiny_cnn(seed=2, width=4)
    a.save(d / "a.cnnkit")
    b.save(d / "b.cnnkit")
    (xt, _), (xv, _) = mnist5k.load_data()
    build_profile(a, xt[:600].reshape(-1, 28, 28, 1).astype(np.float32)).save(
        profile_path(d / "a.cnnkit"))  # drift monitoring for "a" only
    return {"a": d / "a.cnnkit", "b": d / "b.cnnkit", "dir": d,
            "digits": xv.reshape(-1, 28, 28, 1)}


@pytest.fixture(scope="module")
def srv(models):
    with server([f"digits={models['a']}", f"small={models['b']}"], "--max-batch-size", "16",
                "--max-wait-ms", "5", "--max-body-mb", "0.25", "--max-image-pixels",
                str(300 * 300), "--reload-interval", "0") as s:
        yield s


def _images(n, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (n, 28, 28, 1)).astype(np.uint8)


def _alone(model, x):
    return np.stack([model.predict(x[i:i + 1].astype(np.float32))[0] for i in range(len(x))])


def _scrape(url):
    parser = pytest.importorskip("prometheus_client.parser",
                                 reason="prometheus_client parses the metrics text")
    status, headers, body = get(url + "/metrics")
    assert status == 200 and headers["content-type"].startswith("text/plain")
    return {f.name: f for f in parser.text_string_to_metric_families(body.decode())}


def _count(families, name, **labels):
    return sum(s.value for fam in families.values() for s in fam.samples
               if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()))


def test_endpoints(srv):
    url = srv["url"]
    assert json.loads(get(url + "/healthz")[2]) == {"status": "ok"}
    assert get(url + "/readyz")[0] == 200
    listed = {m["name"]: m for m in json.loads(get(url + "/v1/models")[2])["models"]}
    assert listed["digits"]["input_shape"] == [28, 28, 1] and listed["digits"]["classes"] == 10
    assert get(url + "/v1/models/nope")[0] == 404
    status, headers, body = get(url + "/")
    assert status == 200 and b"<canvas" in body and headers["content-type"].startswith("text/html")


def test_concurrent_requests_equal_predicting_alone(srv, models):
    """64 requests from 32 threads, as PNG bodies, multipart forms and JSON: every answer
    equals model.predict on that input alone, bit for bit, and requests were batched."""
    url = srv["url"]
    ref = {"digits": load_model(models["a"], compile=False),
           "small": load_model(models["b"], compile=False)}
    before = _scrape(url)
    x = _images(64, seed=5)

    def one(i):
        name = "digits" if i % 4 else "small"
        u = f"{url}/v1/models/{name}:predict?outputs=1&top_k=3"
        if i % 3 == 0:
            r = post(u, png_bytes(x[i]), "image/png")
        elif i % 3 == 1:
            boundary = "cnnkitboundary"
            body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"image\"; "
                    f"filename=\"d{i}.png\"\r\nContent-Type: image/png\r\n\r\n").encode() + \
                png_bytes(x[i]) + f"\r\n--{boundary}--\r\n".encode()
            r = post(u, body, f"multipart/form-data; boundary={boundary}")
        else:
            r = post(u, json.dumps({"instances": x[i].tolist()}).encode(), "application/json")
        return name, r

    with ThreadPoolExecutor(32) as pool:
        results = list(pool.map(one, range(64)))
    for i, (name, (status, _, body)) in enumerate(results):
        assert status == 200, body
        want = _alone(ref[name], x[i:i + 1])[0]
        got = np.array(body["predictions"][0]["outputs"], dtype=np.float32)
        np.testing.assert_array_equal(got, want)
        p = np.exp(want - want.max())
        p /= p.sum()
        top = body["predictions"][0]["top"]
        assert [t["class"] for t in top] == list(np.argsort(-p, kind="stable")[:3])
        assert top[0]["probability"] == pytest.approx(float(p.max()), rel=1e-5)
    after = _scrape(url)
    sent = sum(1 for n, _ in results if n == "digits")
    assert _count(after, "cnnkit_requests_total", model="digits", status="200") - \
        _count(before, "cnnkit_requests_total", model="digits", status="200") == sent
    batches = _count(after, "cnnkit_batch_size_count", model="digits") - \
        _count(before, "cnnkit_batch_size_count", model="digits")
    samples = _count(after, "cnnkit_batch_size_sum", model="digits") - \
        _count(before, "cnnkit_batch_size_sum", model="digits")
    assert samples == sent and batches <= sent
    assert _count(after, "cnnkit_batch_size_bucket", model="digits", le="+Inf") == \
        _count(after, "cnnkit_batch_size_bucket", model="digits", le="16")  # never above 16
    assert after["cnnkit_queue_depth"].type == "gauge"
    assert after["cnnkit_request_seconds"].type == "histogram"
    assert after["cnnkit_requests"].type == "counter"


def test_drift_endpoint_and_metrics(models):
    """Held-out digits: no alarm; inverted digits: alarm in /drift, /metrics and the log."""
    with server([str(models["a"])], "--reload-interval", "0", "--drift-window", "60") as s:
        url = s["url"]
        status, _, doc = get(url + "/v1/models/a/drift")
        assert status == 200 and json.loads(doc)["status"] == "warming up"
        assert get(url + "/v1/models/nope/drift")[0] == 404
        digits = models["digits"][:60]
        st, _, _ = post(url + "/v1/models/a:predict",
                        json.dumps({"instances": digits.tolist()}).encode(), "application/json")
        assert st == 200
        report = json.loads(get(url + "/v1/models/a/drift")[2])
        assert report["samples"] == 60 and report["alarm"] is False, report
        st, _, _ = post(url + "/v1/models/a:predict",
                        json.dumps({"instances": (255 - digits).tolist()}).encode(),
                        "application/json")
        report = json.loads(get(url + "/v1/models/a/drift")[2])
        assert report["alarm"] is True and "ks" in report["alarms"], report
        fam = _scrape(url)
        assert _count(fam, "cnnkit_drift_alarm", model="a") == 1
        assert _count(fam, "cnnkit_drift_score", model="a", statistic="ks_p") == \
            pytest.approx(report["ks_p"], rel=1e-6, abs=1e-300)
        assert "drift alarm for model a" in s["log"].read_text()


@pytest.mark.parametrize("body,ctype,status,words", [
    (b"\x89PNG\r\n\x1a\n not really", "image/png", 400, "cannot read the request body"),
    (b"", "image/png", 400, "empty"),
    (b"{bad json", "application/json", 400, "not valid JSON"),
    (json.dumps({"instances": [[1, 2], [3, 4]]}).encode(), "application/json", 400,
     "expected inputs of shape (N, 28, 28, 1)"),
    (json.dumps({"instances": [[[1, "x"]]]}).encode(), "application/json", 400,
     "rectangular array of numbers"),
    (json.dumps({"pixels": []}).encode(), "application/json", 400, "'instances' key"),
    (b"0" * (300 * 1024), "application/octet-stream", 413, "limit of 262,144"),
    (b"--x\r\nbroken", "multipart/form-data; boundary=x", 400, "multipart"),
])
def test_bad_requests_get_one_line(srv, body, ctype, status, words):
    got, _, doc = post(srv["url"] + "/v1/models/digits:predict", body, ctype)
    assert got == status, doc
    assert words in doc["error"] and "\n" not in doc["error"]
    assert get(srv["url"] + "/healthz")[0] == 200  # nothing crashed


def test_image_limits_and_query(srv):
    import io

    from PIL import Image

    buf = io.BytesIO()
    Image.new("L", (400, 400)).save(buf, format="PNG")  # 160,000 pixels > 90,000
    status, _, doc = post(srv["url"] + "/v1/models/digits:predict", buf.getvalue(), "image/png")
    assert status == 413 and "400x400" in doc["error"]
    status, _, doc = post(srv["url"] + "/v1/models/digits:predict?top_k=zero",
                          png_bytes(_images(1)[0]), "image/png")
    assert status == 400 and "top_k" in doc["error"]
    buf = io.BytesIO()  # a larger colour image is converted and resized as cnnkit predict does
    Image.new("RGB", (56, 40), (200, 10, 10)).save(buf, format="JPEG")
    status, _, doc = post(srv["url"] + "/v1/models/digits:predict", buf.getvalue(), "image/jpeg")
    assert status == 200 and len(doc["predictions"][0]["top"]) == 5


def _raw(url):
    host, port = url.removeprefix("http://").split(":")
    return socket.create_connection((host, int(port)), timeout=10)


def test_faults_disconnect_and_slow_upload(srv):
    url = srv["url"]
    before = _scrape(url)
    body = json.dumps({"instances": _images(8).tolist()}).encode()
    for _ in range(5):  # the client leaves right after sending: the request is still answered
        s = _raw(url)
        s.sendall(b"POST /v1/models/small:predict HTTP/1.1\r\nHost: x\r\nContent-Type: "
                  b"application/json\r\nContent-Length: " + str(len(body)).encode() +
                  b"\r\n\r\n" + body)
        s.close()
    s = _raw(url)  # a slow upload: headers, then a trickle, then silence
    s.sendall(b"POST /v1/models/small:predict HTTP/1.1\r\nHost: x\r\nContent-Type: "
              b"application/json\r\nContent-Length: 5000\r\n\r\n{\"instances\": ")
    assert get(url + "/healthz")[0] == 200  # others are served meanwhile
    for _ in range(50):
        after = _scrape(url)
        done = _count(after, "cnnkit_requests_total", model="small", status="200") - \
            _count(before, "cnnkit_requests_total", model="small", status="200")
        if done >= 5:
            break
        time.sleep(0.1)
    assert done == 5  # no accepted request lost
    s.close()
    status, _, _ = post(url + "/v1/models/small:predict", png_bytes(_images(1)[0]), "image/png")
    assert status == 200


def test_burst_beyond_queue_gets_503_and_nothing_is_lost(models):
    with server([str(models["a"])], "--queue-length", "2", "--max-batch-size", "1",
                "--reload-interval", "0") as s:
        url = s["url"] + "/v1/models/a:predict"
        body = json.dumps({"instances": _images(32).tolist()}).encode()  # ~30 ms each

        def one(_):
            return post(url, body, "application/json")

        with ThreadPoolExecutor(16) as pool:
            results = list(pool.map(one, range(16)))
        codes = [r[0] for r in results]
        assert set(codes) <= {200, 503} and codes.count(503) >= 1 and codes.count(200) >= 3
        assert all(r[1].get("retry-after") == "1" for r in results if r[0] == 503)
        fam = _scrape(s["url"])
        assert _count(fam, "cnnkit_requests_total", model="a", status="200") == codes.count(200)
        assert _count(fam, "cnnkit_batch_size_sum", model="a") == 32 * codes.count(200)
        assert post(url, png_bytes(_images(1)[0]), "image/png")[0] == 200


def test_request_timeout_504_and_failing_model_500(models):
    """In process (so the model can be slowed down): an answer not ready within --timeout is
    504; a model call that raises answers its own requests with 500; the server goes on."""
    import uvicorn

    from cnnkit.serve import ServeConfig
    from cnnkit.serve.app import Server

    app = Server({"a": models["a"]}, ServeConfig(timeout_s=0.3, reload_interval_s=0))
    port = free_port()
    srv = uvicorn.Server(uvicorn.Config(app.app, port=port, log_level="warning"))
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(300):
            if app.registry is not None and srv.started:
                break
            time.sleep(0.05)
        batcher = app.registry.get("a").batcher
        real = batcher.run

        def slow(x):
            time.sleep(1.0)
            return real(x)

        def broken(x):
            raise RuntimeError("simulated failure")

        batcher.run = slow
        status, _, doc = post(url + "/v1/models/a:predict", png_bytes(_images(1)[0]), "image/png")
        assert status == 504 and "0.3 s" in doc["error"]
        time.sleep(1.2)  # the slow call finishes (its answer is dropped)
        batcher.run = broken
        status, _, doc = post(url + "/v1/models/a:predict", png_bytes(_images(1)[0]), "image/png")
        assert status == 500 and "simulated failure" in doc["error"]
        batcher.run = real
        status, _, _ = post(url + "/v1/models/a:predict", png_bytes(_images(1)[0]), "image/png")
        assert status == 200
    finally:
        srv.should_exit = True
        thread.join(30)


def test_hot_reload_during_load(models, tmp_path):
    a, b = load_model(models["a"], compile=False), load_model(models["b"], compile=False)
    path = tmp_path / "live.cnnkit"
    a.save(path)
    x = _images(1, seed=9)
    want_a, want_b = _alone(a, x)[0], _alone(b, x)[0]
    with server([f"live={path}"], "--reload-interval", "0.1") as s:
        url = s["url"] + "/v1/models/live:predict?outputs=1"
        seen, stop = [], threading.Event()

        def load():
            while not stop.is_set():
                sent = time.monotonic()
                st, _, doc = post(url, png_bytes(x[0]), "image/png")
                seen.append((st, None if st != 200 else
                             np.array(doc["predictions"][0]["outputs"], np.float32),
                             sent, time.monotonic()))

        threads = [threading.Thread(target=load) for _ in range(4)]
        for t in threads:
            t.start()
        time.sleep(0.5)
        (tmp_path / "half.cnnkit").write_bytes(path.read_bytes()[:100])  # a broken file...
        os.replace(tmp_path / "half.cnnkit", path)
        time.sleep(0.8)  # ...is refused: the old model keeps serving
        b.save(tmp_path / "next.cnnkit")
        os.replace(tmp_path / "next.cnnkit", path)  # atomic replace by the new model
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and not (seen and seen[-1][1] is not None and
                                                   np.array_equal(seen[-1][1], want_b)):
            time.sleep(0.1)
        time.sleep(0.3)
        stop.set()
        for t in threads:
            t.join()
        fam = _scrape(s["url"])
    assert all(st == 200 for st, *_ in seen), {st for st, *_ in seen}
    kinds = ["a" if np.array_equal(o, want_a) else "b" if np.array_equal(o, want_b) else "?"
             for _, o, *_ in seen]
    assert "?" not in kinds and kinds[0] == "a" and kinds[-1] == "b"
    # once a new-model answer has arrived, no request sent after it gets the old model
    first_b = min(got for (*_, got), k in zip(seen, kinds, strict=True) if k == "b")
    assert all(sent < first_b for (_, _, sent, _), k in zip(seen, kinds, strict=True)
               if k == "a")
    assert _count(fam, "cnnkit_model_reloads_total", model="live", result="ok") == 1
    assert _count(fam, "cnnkit_model_reloads_total", model="live", result="failed") >= 1


def test_graceful_shutdown_finishes_in_flight(models):
    with server([str(models["a"])], "--max-wait-ms", "1500", "--reload-interval", "0") as s:
        out = {}

        def slow():
            out["r"] = post(s["url"] + "/v1/models/a:predict", png_bytes(_images(1)[0]),
                            "image/png")

        t = threading.Thread(target=slow)
        t.start()
        time.sleep(0.5)  # the request waits in its batch for 1.5 s
        s["proc"].terminate()
        t.join(20)
        assert out["r"][0] == 200
        # Uvicorn ends by re-raising the signal it stopped for, after the graceful shutdown
        assert s["proc"].wait(20) in (0, -signal.SIGTERM)
        assert "Finished server process" in s["log"].read_text()
