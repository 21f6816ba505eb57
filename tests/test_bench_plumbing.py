"""The workload benchmark's plumbing in short form (no timing asserted): the conv-layer
multiply-add count against a closed form, ONNX Runtime and the ResNet-50 twin against
PyTorch, the NumPy-path child really running without the C helper, and per-family result
sections kept apart."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench import common as C  # noqa: E402
from bench import workloads as W  # noqa: E402
from bench.convrate import conv_time  # noqa: E402


def test_conv_time_counts_the_multiply_adds_of_a_training_step():
    from cnnkit import layers
    from cnnkit.models import Sequential
    from cnnkit.train.losses import CrossEntropyLoss

    n, h, w = 2, 8, 8
    model = Sequential([layers.Input((h, w, 3)), layers.Conv2D(4, 3, padding="same"),
                        layers.Conv2D(5, 3, padding="same", activation="relu"),
                        layers.Flatten(), layers.Dense(2)])
    x = np.random.default_rng(0).standard_normal((n, h, w, 3), dtype=np.float32)
    y = np.array([0, 1])

    def step():
        CrossEntropyLoss()(model(x, training=True), y).backward()

    out = conv_time(step, steps=1, warmup=0)
    first = n * h * w * 4 * (3 * 3 * 3)  # forward, dK; no dX for the network's input
    second = n * h * w * 5 * (3 * 3 * 4)  # forward, dK, dX
    assert out["macs"] == 2 * first + 3 * second
    assert 0 < out["seconds"] <= out["step_s"]


def test_conv_time_counts_an_inference_call_with_fused_conv_and_pool():
    from cnnkit import layers, no_grad
    from cnnkit.models import Sequential

    n, h, w = 8, 12, 12
    model = Sequential([layers.Input((h, w, 1)), layers.Conv2D(16, 3, activation="relu"),
                        layers.MaxPooling2D(2), layers.Flatten(), layers.Dense(2)])
    x = np.random.default_rng(0).standard_normal((n, h, w, 1), dtype=np.float32)

    def step():
        with no_grad():
            model(x, training=False)

    out = conv_time(step, steps=1, warmup=0)  # fused in the C helper or not: the same count
    assert out["macs"] == n * 10 * 10 * 16 * (3 * 3 * 1)
    assert 0 < out["seconds"] <= out["step_s"]


def test_onnx_runtime_runs_cnnkits_export_of_lenet_like_pytorch():
    pytest.importorskip("onnxruntime", reason="the onnx extra")
    pytest.importorskip("torch", reason="the PyTorch twin is the reference")
    from bench import ort

    case = W.make_case(W.BY_KEY["W2"])
    fn, meta = ort.ort_infer(case)
    assert meta["source"] == "cnnkit exporter"
    assert meta["diff"] < 1e-5  # ORT's logits against PyTorch's on the same weights
    assert fn()[0].shape == (128, 10)


def test_resnet50_twin_is_torchvisions_network_and_matches_cnnkit():
    torch = pytest.importorskip("torch", reason="the PyTorch twin is the reference")
    w = W.BY_KEY["W7"].quick_form()
    case = W.make_case(w)
    # torchvision's published ResNet-50 parameter count
    assert sum(p.numel() for p in case.pt.parameters()) == 25_557_032
    case.pt.eval()
    import cnnkit

    with cnnkit.no_grad():
        a = np.asarray(case.ck(case.x, training=False).data)
    with torch.inference_mode():
        b = case.pt(case.xt).numpy()
    assert np.abs(a - b).max() < 1e-4 * max(1.0, float(np.abs(b).max()))


def test_numpy_path_child_runs_with_the_helper_off():
    pytest.importorskip("torch", reason="the probe times PyTorch beside cnnkit")
    from bench.numpy_path import run_numpy_probe

    probe = run_numpy_probe(W.BY_KEY["W2"], "smoke")
    assert probe is not None  # the child raises (and this is None) if the helper was on
    assert probe["spec"] == "W2:smoke" and probe["rounds"] == 1
    assert probe["cnnkit_s"] > 0 and probe["torch_s"] > 0


def test_family_sections_are_kept_apart(tmp_path, monkeypatch):
    path = tmp_path / "RESULTS.md"
    path.write_text("# Benchmark results\n\n## Other\n\nhand-written\n")
    intel = "## Workloads, Intel: Intel Xeon [avx2 avx512f amx_tile] (python -m bench)"
    amd = "## Workloads, AMD: AMD EPYC [avx2 fma] (python -m bench)"
    for section, text in ((intel, "intel 1"), (amd, "amd 1"), (intel, "intel 2")):
        C.update_results(section, f"{section}\n\n{C.block_markers('targets')}\n",
                         {"targets": text}, path)
    out = path.read_text()
    assert "hand-written" in out and "amd 1" in out and "intel 2" in out
    assert "intel 1" not in out and out.count(intel) == 1 and out.count(amd) == 1
    assert out.index(intel) < out.index("intel 2") < out.index(amd)
    monkeypatch.setattr(C, "_cpuinfo", lambda: {
        "model name": "Intel(R) Xeon(R) Platinum 8480+", "flags": "fma avx2 avx512f "
        "avx512_vnni amx_tile"})
    assert C.family_section() == ("## Workloads, Intel: Intel(R) Xeon(R) Platinum 8480+ "
                                  "[avx2 fma avx512f avx512_vnni amx_tile] (python -m bench)")
