"""One self-contained HTML page about a trained model: training curves, confusion matrix,
per-class accuracy, the most confident mistakes with their Grad-CAM, and the summary table
with FLOPs and receptive fields. Pictures are PNGs embedded as data URIs; no scripts, no
network."""

from __future__ import annotations

import base64
import html
import io
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..files import atomic_write
from .explain import default_layer, explain
from .plots import _pyplot, plot_confusion_matrix, plot_history

_STYLE = """body{font-family:sans-serif;margin:2em auto;max-width:1100px;color:#222}
h1{font-size:1.6em}h2{border-bottom:1px solid #ccc;padding-bottom:.2em;margin-top:1.6em}
img{max-width:100%}table{border-collapse:collapse}td,th{padding:.2em .8em;text-align:right;
border-bottom:1px solid #eee}th:first-child,td:first-child{text-align:left}
pre{font-size:11px;overflow-x:auto;background:#f7f7f7;padding:1em}
.mistakes{display:flex;flex-wrap:wrap;gap:1em}.mistakes figure{margin:0;text-align:center}
.bar{display:inline-block;height:.8em;background:#4a8}"""


def _png_uri(draw: Any) -> str:
    """``draw(path)`` writes a PNG; its bytes as a data URI."""
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "figure.png"
        draw(path)
        data = path.read_bytes()
    return "data:image/png;base64," + base64.b64encode(data).decode("ascii")


def _mistakes_figure(images: np.ndarray, maps: np.ndarray, captions: list[str]) -> str:
    plt = _pyplot()
    n = len(images)
    fig, axes = plt.subplots(2, n, figsize=(1.9 * n, 4.2), squeeze=False)
    for i in range(n):
        img = images[i].astype(np.float32)
        img = (img - img.min()) / max(float(img.max() - img.min()), 1e-8)
        show = img[..., 0] if img.shape[-1] == 1 else img
        for row in (0, 1):
            axes[row, i].imshow(show, cmap="gray" if show.ndim == 2 else None)
            axes[row, i].set_xticks([])
            axes[row, i].set_yticks([])
        axes[1, i].imshow(maps[i], cmap="jet", alpha=0.5, vmin=0, vmax=1)
        axes[0, i].set_title(captions[i], fontsize=8)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90)
    plt.close(fig)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def _per_class_rows(cm: np.ndarray, names: Sequence[str]) -> str:
    rows = []
    for c in range(cm.shape[0]):
        total = int(cm[c].sum())
        acc = cm[c, c] / total if total else 0.0
        rows.append(f"<tr><td>{html.escape(names[c])}</td><td>{acc:.3f}</td><td>{total}</td>"
                    f"<td><span class='bar' style='width:{int(acc * 200)}px'></span></td></tr>")
    return "\n".join(rows)


def report_html(model: Any, history: dict, x: np.ndarray, y: np.ndarray,
                class_names: Sequence[str] | None, title: str, mistakes: int = 8) -> str:
    """The page as a string (see module doc); ``x``, ``y``: held-out images and labels."""
    probs = model.predict(x.astype(np.float32), batch_size=256)
    if not (np.all(probs >= 0) and np.allclose(probs.sum(-1), 1, atol=1e-3)):  # logits
        e = np.exp(probs - probs.max(-1, keepdims=True))
        probs = e / e.sum(-1, keepdims=True)
    pred = probs.argmax(-1)
    k = max(probs.shape[-1], int(y.max()) + 1)
    names = list(class_names or [])
    names += [str(i) for i in range(len(names), k)]
    cm = np.zeros((k, k), dtype=np.int64)
    np.add.at(cm, (y.astype(np.int64), pred), 1)
    acc = float(np.trace(cm) / cm.sum())
    parts = [f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>"
             f"{html.escape(title)}</title><style>{_STYLE}</style></head><body>",
             f"<h1>{html.escape(title)}</h1>",
             f"<p>Held-out accuracy: <b>{acc:.4f}</b> on {len(y)} images.</p>"]
    if history:
        parts.append("<h2>Training curves</h2><img alt='training curves' src='"
                     + _png_uri(lambda p: plot_history(history, p)) + "'>")
    parts.append("<h2>Confusion matrix</h2><img alt='confusion matrix' src='"
                 + _png_uri(lambda p: plot_confusion_matrix(cm, names, p)) + "'>")
    parts.append("<h2>Per-class accuracy</h2><table><tr><th>class</th><th>accuracy</th>"
                 f"<th>images</th><th></th></tr>{_per_class_rows(cm, names)}</table>")
    parts.append(_mistakes_section(model, x, y, probs, pred, names, mistakes))
    summary = model.summary(print_fn=lambda s: None, flops=True, receptive_field=True)
    parts.append(f"<h2>Model: FLOPs and receptive field</h2><pre>{html.escape(summary)}</pre>")
    parts.append("</body></html>")
    return "\n".join(parts)


def _mistakes_section(model: Any, x: np.ndarray, y: np.ndarray, probs: np.ndarray,
                      pred: np.ndarray, names: list[str], count: int) -> str:
    wrong = np.nonzero(pred != y)[0]
    if not len(wrong):
        return "<h2>Worst mistakes</h2><p>No mistakes on the held-out images.</p>"
    order = wrong[np.argsort(-probs[wrong, pred[wrong]])][:count]
    try:
        layer = default_layer(model)
    except ValueError:
        return "<h2>Worst mistakes</h2><p>(no feature-map layer for Grad-CAM)</p>"
    maps = explain(model, x[order].astype(np.float32), "gradcam", layer=layer,
                   class_index=pred[order]).maps
    captions = [f"true {names[y[i]]}\npred {names[pred[i]]} ({probs[i, pred[i]]:.2f})"
                for i in order]
    src = _mistakes_figure(x[order], maps, captions)
    return (f"<h2>Worst mistakes</h2><p>The {len(order)} most confident wrong answers; "
            f"below each, Grad-CAM at <code>{html.escape(layer)}</code> for the predicted "
            f"class.</p><img alt='worst mistakes' src='{src}'>")


def write_report(path: Any, page: str) -> None:
    with atomic_write(path, "w") as f:
        f.write(page)
