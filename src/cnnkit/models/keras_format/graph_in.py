"""A Keras model config (Keras 3 ``config.json`` or Keras 2 ``model_config``) as a cnnkit
model: Sequential and functional, nested models, shared layers. Each Keras layer becomes the
cnnkit layer of the same class; the graph is rebuilt by calling them on symbolic tensors in
an order where every node's inputs exist (Keras lists a shared layer's calls together, so a
later call may read layers listed after it)."""

from __future__ import annotations

from typing import Any

from ...layers.core import InputLayer
from .errors import KerasFileError
from .layer_config import MODEL_CLASSES, keras_to_cnnkit, refuse_custom
from .ops_in import is_op, op_entry
from .tree import Entry

MAX_DEPTH = 32  # models nested in models
MAX_ENTRIES = 20_000  # layers and nodes in one model


def build(entry: Any, where: str, depth: int = 0) -> Entry:
    """The cnnkit layer or model for one Keras ``{"class_name", "config"}`` entry."""
    from ..serialization import deserialize

    if not isinstance(entry, dict):
        raise KerasFileError(f"{where}: a layer entry must be an object, got "
                             f"{type(entry).__name__}")
    name = refuse_custom(entry, where)
    if name in MODEL_CLASSES:
        if depth >= MAX_DEPTH:
            raise KerasFileError(f"{where}: models nested more than {MAX_DEPTH} deep")
        cfg = entry.get("config")
        if name == "Sequential":
            return _sequential(cfg, where, depth)
        return _functional(cfg, where, depth)
    cfg = keras_to_cnnkit(name, entry.get("config"), where)
    if name == "InputLayer":
        _shape(cfg.get("batch_shape") or [None, *(cfg.get("shape") or [])], where)
    try:
        layer = deserialize({"class_name": name, "config": cfg})
    except ValueError as e:
        raise KerasFileError(f"{where}: {e}") from None
    return Entry(layer, name)


def _layer_list(cfg: Any, where: str) -> list:
    layers = cfg.get("layers") if isinstance(cfg, dict) else cfg  # Keras <= 2.2: a bare list
    if not isinstance(layers, list) or len(layers) > MAX_ENTRIES:
        raise KerasFileError(f"{where}: a model config needs a list of at most {MAX_ENTRIES} "
                             f"layers")
    return layers


def _shape(value: Any, where: str) -> tuple | None:
    if value is None:
        return None
    ok = isinstance(value, list) and 0 < len(value) <= 16 and all(
        v is None or (isinstance(v, int) and not isinstance(v, bool) and 0 <= v < 1 << 31)
        for v in value)
    if not ok:
        raise KerasFileError(f"{where}: invalid input shape {str(value)[:80]}")
    return (None, *value[1:])


def _sequential(cfg: Any, where: str, depth: int) -> Entry:
    from ..serialization import layer_class

    Sequential = layer_class("Sequential")

    name = cfg.get("name") if isinstance(cfg, dict) else None
    model = Sequential(name=name if isinstance(name, str) else None)
    where = f"{where}: Sequential {model.name!r}"
    spec = _shape(cfg.get("build_input_shape"), where) if isinstance(cfg, dict) else None
    children = []
    for i, lc in enumerate(_layer_list(cfg, where)):
        child = build(lc, where, depth + 1)
        if isinstance(child.layer, InputLayer):
            if i != 0:
                raise KerasFileError(f"{where}: an InputLayer can only come first")
            spec = (child.layer.batch_size, *child.layer.shape)
            model._input_layer_name = child.layer.name
            continue
        if not model._layers and spec is None and child.layer.input_shape_arg is not None:
            spec = (None, *child.layer.input_shape_arg)
        model._layers.append(child.layer)
        children.append(child)
    if spec is None:
        raise KerasFileError(f"{where} has no input shape; cannot build it")
    model._input_spec = spec
    try:
        model._build_chain(spec)
    except MemoryError:
        raise
    except Exception as e:  # a layer's complaint about the shapes the file gives it
        raise KerasFileError(f"{where}: building it failed: {type(e).__name__}: {e}") from None
    if isinstance(cfg, dict) and cfg.get("trainable") is False:
        model.trainable = False
    return Entry(model, "Sequential", children)


def _history(ref: Any, where: str) -> tuple[str, int, int]:
    """(layer, node index, tensor index) from Keras 3's ``__keras_tensor__`` or Keras 2's
    ``[layer, node, tensor, kwargs]``."""
    if isinstance(ref, dict) and ref.get("class_name") == "__keras_tensor__":
        ref = (ref.get("config") or {}).get("keras_history")
    ok = isinstance(ref, list) and len(ref) in (3, 4) and isinstance(ref[0], str) and all(
        isinstance(v, int) and not isinstance(v, bool) and 0 <= v < MAX_ENTRIES
        for v in ref[1:3])
    if not ok:
        raise KerasFileError(f"{where}: invalid tensor reference {str(ref)[:120]}")
    if len(ref) == 4 and ref[3] not in ({}, None):
        raise KerasFileError(f"{where}: call arguments {str(ref[3])[:80]} are not supported")
    return ref[0], ref[1], ref[2]


def _is_ref(v: Any) -> bool:
    return (isinstance(v, dict) and v.get("class_name") == "__keras_tensor__") or (
        isinstance(v, list) and len(v) in (3, 4) and isinstance(v[0], str))


def _node_inputs(node: Any, where: str) -> tuple[Any, bool]:
    """(references, whether the layer takes a list) of one inbound node."""
    if isinstance(node, dict):  # Keras 3: {"args": [...], "kwargs": {...}}
        args, kwargs = node.get("args"), node.get("kwargs") or {}
        if not isinstance(kwargs, dict) or any(
                v is not None for k, v in kwargs.items() if k != "training"):
            raise KerasFileError(f"{where}: call arguments {str(kwargs)[:80]} are not "
                                 f"supported")
        if not isinstance(args, list) or len(args) != 1:
            raise KerasFileError(f"{where}: a call must take one argument, got "
                                 f"{str(args)[:80]}")
        arg = args[0]
        if _is_ref(arg):
            return [_history(arg, where)], False
        if isinstance(arg, list) and arg and all(map(_is_ref, arg)):
            return [_history(a, where) for a in arg], True
        raise KerasFileError(f"{where}: unsupported call argument {str(arg)[:80]}")
    if isinstance(node, list) and node and all(map(_is_ref, node)):  # Keras 2
        return [_history(a, where) for a in node], len(node) > 1
    raise KerasFileError(f"{where}: invalid inbound node {str(node)[:80]}")


def _node_order(nodes: dict, ready: set, where: str) -> list:
    """The node keys in an order where each node comes after the nodes it reads."""
    order: list = []
    state: dict = {}  # 1: its inputs are being visited, 2: placed
    for start in nodes:
        stack = [(start, False)]
        while stack:
            key, expanded = stack.pop()
            if expanded:
                state[key] = 2
                order.append(key)
                continue
            if state.get(key) == 2:
                continue
            state[key] = 1
            stack.append((key, True))
            for ln, ni, _ in nodes[key][0]:
                dep = (ln, ni)
                if dep in ready or state.get(dep) == 2:
                    continue
                if dep not in nodes:
                    raise KerasFileError(f"{where}: layer {key[0]!r} reads call {ni} of layer "
                                         f"{ln[:80]!r}, which the config does not define")
                if state.get(dep) == 1:
                    raise KerasFileError(f"{where}: the graph has a cycle through layer "
                                         f"{ln[:80]!r}")
                stack.append((dep, False))
    return order


def _tensor(outputs: dict, ref: tuple, where: str) -> Any:
    ln, ni, ti = ref
    outs = outputs.get((ln, ni))
    if outs is None or ti >= len(outs):
        raise KerasFileError(f"{where}: no tensor {ti} in call {ni} of layer {ln[:80]!r}")
    return outs[ti]


def _io_refs(value: Any, where: str) -> list[tuple[str, int, int]]:
    if isinstance(value, list) and len(value) == 3 and isinstance(value[0], str):
        value = [value]  # Keras 3 writes one input as a bare reference
    if not isinstance(value, list) or not value or len(value) > MAX_ENTRIES:
        raise KerasFileError(f"{where}: 'input_layers' / 'output_layers' must list tensors")
    return [_history(v, where) for v in value]


def _named_entries(cfg: dict, where: str, depth: int) -> dict[str, tuple[Entry, Any]]:
    by_name: dict[str, tuple[Entry, Any]] = {}
    for lc in _layer_list(cfg, where):
        if not isinstance(lc, dict):
            raise KerasFileError(f"{where}: a layer entry must be an object")
        if is_op(lc):
            child, inbound = op_entry(lc, where)
        else:
            child, inbound = build(lc, where, depth + 1), lc.get("inbound_nodes") or []
        lname = lc.get("name") if isinstance(lc.get("name"), str) else child.layer.name
        if lname in by_name:
            raise KerasFileError(f"{where}: two layers are named {lname[:80]!r}")
        by_name[lname] = (child, inbound)
    return by_name


def _functional(cfg: Any, where: str, depth: int) -> Entry:
    from ..serialization import layer_class

    Model = layer_class("Model")

    if not isinstance(cfg, dict):
        raise KerasFileError(f"{where}: a functional model's config must be an object")
    where = f"{where}: model {str(cfg.get('name'))[:80]!r}"
    by_name = _named_entries(cfg, where, depth)
    nodes: dict = {}
    outputs: dict = {}
    for lname, (child, inbound) in by_name.items():
        if isinstance(child.layer, InputLayer):
            outputs[(lname, 0)] = [child.layer.output]
            continue
        if not isinstance(inbound, list) or len(nodes) + len(inbound) > MAX_ENTRIES:
            raise KerasFileError(f"{where}: layer {lname[:80]!r} has invalid inbound nodes")
        for k, nd in enumerate(inbound):
            nodes[(lname, k)] = _node_inputs(nd, f"{where}: layer {lname[:80]!r}")
    for key in _node_order(nodes, set(outputs), where):
        refs, listed = nodes[key]
        args = [_tensor(outputs, r, where) for r in refs]
        try:
            out = by_name[key[0]][0].layer(args if listed else args[0])
        except MemoryError:
            raise
        except Exception as e:  # a layer's complaint about the shapes the file gives it
            raise KerasFileError(f"{where}: calling layer {key[0][:80]!r} failed: "
                                 f"{type(e).__name__}: {e}") from None
        outputs[key] = out if isinstance(out, list) else [out]
    ins = [_tensor(outputs, r, where) for r in _io_refs(cfg.get("input_layers"), where)]
    outs = [_tensor(outputs, r, where) for r in _io_refs(cfg.get("output_layers"), where)]
    try:
        model = Model(ins[0] if len(ins) == 1 else ins, outs[0] if len(outs) == 1 else outs,
                      name=cfg.get("name") if isinstance(cfg.get("name"), str) else None)
    except (ValueError, TypeError) as e:
        raise KerasFileError(f"{where}: {e}") from None
    if cfg.get("trainable") is False:
        model.trainable = False
    return Entry(model, "Functional", [e for e, _ in by_name.values()])
