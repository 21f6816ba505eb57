"""The child process: runs cases from a manifest under a memory limit and a per-case alarm,
printing one JSON line per finished case. Run by ``runner``; not meant to be started by hand.

Usage: python -m fuzz.worker MANIFEST START TIMEOUT_S MEMORY_BYTES
"""

from __future__ import annotations

import json
import os
import resource
import signal
import sys
import time
import traceback
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any


class CaseTimeout(BaseException):
    """Raised by SIGALRM; a BaseException so a reader's ``except Exception`` cannot eat it."""


def _on_alarm(signum: int, frame: Any) -> None:
    raise CaseTimeout


def limit_resources(memory_bytes: int) -> None:
    """Address space capped, no core files, no file written above 256 MiB."""
    resource.setrlimit(resource.RLIMIT_AS, (memory_bytes, memory_bytes))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    resource.setrlimit(resource.RLIMIT_FSIZE, (256 << 20, 256 << 20))


def _selftest(path: str) -> None:
    """A reader that misbehaves on request, to check the harness's own accounting."""
    command = Path(path).read_text().split()
    if command[0] == "segv":
        os.kill(os.getpid(), signal.SIGSEGV)
    elif command[0] == "spin":
        while True:
            pass
    elif command[0] == "stuck":  # alarm blocked: only the parent's watchdog can end this
        signal.pthread_sigmask(signal.SIG_BLOCK, [signal.SIGALRM])
        time.sleep(3600)
    elif command[0] == "touch":
        Path(command[1]).touch()
    elif command[0] == "memory":
        bytearray(8 << 30)
    elif command[0] == "raise":
        raise {"key": KeyError, "value": ValueError}[command[1]]("selftest")


def readers() -> dict[str, tuple[Callable[[str], Any], tuple[type, ...]]]:
    """reader name -> (call on a path, allowed exception types). UnsafeCheckpointError is
    listed on its own: it is a ValueError once the hardened readers land, a plain
    ``pickle.UnpicklingError`` before; both are accepted."""
    from cnnkit.data import image_dataset_from_directory, load_image
    from cnnkit.datasets.idx import read_idx
    from cnnkit.deploy import load_quantized
    from cnnkit.io import UnsafeCheckpointError, load_onnx, load_safetensors, load_state_dict
    from cnnkit.models import load_model

    from .seeds import make_model

    model = make_model(0)
    return {
        "load_state_dict": (load_state_dict, (ValueError, UnsafeCheckpointError)),
        "load_safetensors": (load_safetensors, (ValueError,)),
        "load_model": (load_model, (ValueError,)),
        "load_weights": (model.load_weights, (ValueError,)),
        "load_quantized": (load_quantized, (ValueError,)),
        "read_idx": (read_idx, (ValueError,)),
        "read_idx_gz": (read_idx, (ValueError,)),
        "load_image": (load_image, (ValueError,)),
        "image_dataset_from_directory": (
            lambda p: image_dataset_from_directory(p, image_size=(16, 16)), (ValueError,)),
        "load_onnx": (load_onnx, (ValueError,)),
        "_selftest": (_selftest, (ValueError,)),
        "load_keras": (load_model, (ValueError,)),
        "load_keras_h5": (load_model, (ValueError,)),
        "load_keras_weights": (model.load_weights, (ValueError,)),
    }


def run_case(call: Callable[[str], Any], allowed: tuple[type, ...], path: str,
             timeout_s: int) -> dict[str, Any]:
    """{"status": "ok" | "allowed" | "wrong" | "hang", "type", "message"} for one call."""
    signal.alarm(timeout_s)
    try:
        call(path)
        status, exc = "ok", None
    except CaseTimeout:
        status, exc = "hang", None
    except allowed as e:
        status, exc = "allowed", e
    except BaseException as e:  # noqa: B036 - anything else is what the fuzzer looks for
        status, exc = "wrong", e
    finally:
        signal.alarm(0)
    if status == "hang":
        return {"status": status, "type": "alarm", "message": f"still running after {timeout_s} s"}
    if exc is None:
        return {"status": status}
    return {"status": status, "type": f"{type(exc).__module__}.{type(exc).__qualname__}",
            "message": str(exc)[:300], "where": _where(exc)}


def _where(exc: BaseException) -> str:
    """The innermost frames of the traceback, where the exception came from."""
    frames = traceback.extract_tb(exc.__traceback__)[-3:]
    return " <- ".join(f"{Path(f.filename).name}:{f.lineno} {f.name}" for f in reversed(frames))


def main(argv: list[str]) -> None:
    """Run the manifest's cases from START on, one JSON result line each on stdout."""
    manifest, start, timeout_s, memory = Path(argv[0]), int(argv[1]), int(argv[2]), int(argv[3])
    out = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)  # anything a reader prints goes to stderr, not into the results
    warnings.simplefilter("ignore")
    table = readers()
    limit_resources(memory)
    signal.signal(signal.SIGALRM, _on_alarm)
    cases = [json.loads(line) for line in manifest.read_text().splitlines()]
    for case in cases[start:]:
        call, allowed = table[case["reader"]]
        result = run_case(call, allowed, case["path"], timeout_s)
        result.update(n=case["n"], marker=Path(case["marker"]).exists())
        out.write(json.dumps(result) + "\n")


if __name__ == "__main__":
    main(sys.argv[1:])
