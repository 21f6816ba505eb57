"""``cnnkit export`` (a model to ONNX) and ``cnnkit convert`` (between model file formats).
Everything is checked before the model is read: the suffixes, the options that go with
them, the output folder; the file is written atomically, so a failed run leaves nothing."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from .errors import UsageError, about


def _formats() -> Any:
    from ..io import formats

    return formats


def _arch_options(args: argparse.Namespace) -> dict:
    opts: dict[str, Any] = {}
    if getattr(args, "input_shape", None):
        opts["input_shape"] = tuple(args.input_shape)
    if getattr(args, "classes", None):
        opts["classes"] = args.classes
    return opts


def _check_in(args: argparse.Namespace) -> None:
    fmt = _formats()
    p = Path(args.model)
    if not p.exists():
        raise UsageError(f"model file not found: {args.model}")
    if p.is_dir():
        raise UsageError(f"model file {args.model} is a directory")
    with about(args.model):
        kind = fmt.format_of(p)
    needs_arch = kind in ("torch", "safetensors")
    if needs_arch and not args.architecture:
        raise UsageError(f"{args.model}: a {p.suffix} file holds weights only: give "
                         f"--architecture NAME (a zoo name, see `cnnkit summary --list`)")
    if not needs_arch and (args.architecture or _arch_options(args)):
        raise UsageError(f"{args.model}: --architecture, --input-shape and --classes are for "
                         f".pth and .safetensors weights; a {p.suffix} file has its own")


def _check_out(out: str, model: str) -> None:
    p = Path(out)
    if p.resolve() == Path(model).resolve():
        raise UsageError(f"{out}: the output would overwrite the input")
    if p.is_dir():
        raise UsageError(f"{out} is a directory, not a file name")
    if not p.parent.is_dir():
        raise UsageError(f"{out}: the folder {p.parent} does not exist")


def _load(args: argparse.Namespace) -> Any:
    arch = None
    if args.architecture:
        from .. import zoo

        with about(f"--architecture {args.architecture}"):
            arch = zoo.get(args.architecture, **_arch_options(args))
    with about(args.model):
        if arch is None and Path(args.model).suffix.lower() == ".cnnkit":
            from ..deploy.int8_file import is_int8_file

            if is_int8_file(args.model):  # an int8 model (cnnkit quantize)
                from ..deploy import load_quantized

                return load_quantized(args.model)
        return _formats().load_any(args.model, arch)


def _is_int8(model: Any) -> bool:
    from ..deploy import QuantizedModel

    return isinstance(model, QuantizedModel)


def _onnx_options(args: argparse.Namespace, model: Any) -> dict:
    opts = {"opset": args.opset, "layout": args.layout.upper(), "training": args.training,
            "dynamic_batch": not args.static_batch}
    if _is_int8(model):
        opts["int8_format"] = args.int8_format or "integer"
    elif args.int8_format is not None:
        raise UsageError(f"{args.model}: --int8-format applies to int8 models (cnnkit "
                         f"quantize); this one is float")
    return opts


def cmd_export(args: argparse.Namespace) -> int:
    _check_in(args)
    if Path(args.out).suffix.lower() != ".onnx":
        raise UsageError(f"{args.out}: export writes ONNX files: the name must end in .onnx "
                         f"(`cnnkit convert` writes the other formats)")
    _check_out(args.out, args.model)
    model = _load(args)
    options = _onnx_options(args, model)
    with about(args.out):
        _formats().save_any(model, args.out, **options)
    kind = {"integer": "int8 integer operators, ", "qdq": "int8 QDQ operators, "}.get(
        options.get("int8_format", ""), "")
    print(f"wrote {args.out} ({kind}ONNX opset {args.opset}, {args.layout.upper()} interface"
          f"{', training form' if args.training else ''})")
    return 0


def cmd_convert(args: argparse.Namespace) -> int:
    _check_in(args)
    with about(args.out):
        kind = _formats().format_of(args.out)
    if kind == "torch":
        raise UsageError(f"{args.out}: cnnkit does not write .pth files (a pickle can run code "
                         f"when loaded); write .safetensors instead")
    onnx_opts = (args.opset is not None or args.layout is not None or args.training
                 or args.int8_format is not None)
    if onnx_opts and kind != "onnx":
        raise UsageError(f"{args.out}: --opset, --layout, --training and --int8-format apply "
                         f"to .onnx output")
    _check_out(args.out, args.model)
    model = _load(args)
    if _is_int8(model) and kind not in ("onnx", "cnnkit"):
        raise UsageError(f"{args.model} is an int8 model: it converts to .onnx or .cnnkit, "
                         f"not {Path(args.out).suffix}")
    options = {}
    if kind == "onnx":
        args.opset = 17 if args.opset is None else args.opset
        args.layout = args.layout or "nchw"
        options = _onnx_options(args, model)
    with about(args.out):
        _formats().save_any(model, args.out, **options)
    print(f"wrote {args.out}")
    return 0
