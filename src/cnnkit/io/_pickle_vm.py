"""A restricted pickle interpreter for the data ``torch.save`` writes (protocols 2-5).

It runs no code from the file: a global is resolved through the caller's table (anything else
is refused at the GLOBAL opcode, before any call), REDUCE calls only those table entries, and
the object-building opcodes (INST, OBJ, NEWOBJ, NEWOBJ_EX, EXT*, out-of-band buffers) are
refused. Memory and nesting are bounded while the pickle runs: every object created is
charged to the file's :class:`MemoryBudget`; a container is sealed once it is nested in
another (a later APPEND/SETITEM on it is refused), which rules out cycles and fixes each
container's depth when it is nested, so depth over ``MAX_DEPTH`` is refused at once.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from typing import Any, NoReturn

from .errors import CheckpointFormatError, MemoryBudget, UnsafeCheckpointError, short

MAX_DEPTH = 64
MAX_INT_BYTES = 256
_OBJECT_COST = 48  # bytes charged per object created (an int, a float, a str header)
_CONTAINER_COST = 160  # a small list or dict, with this interpreter's bookkeeping for it
_CONTAINERS = (list, dict, tuple)
_KEY_TYPES = (str, int, float, bytes, bool, type(None), tuple)


class Global:
    """An allowed global: ``call(args)`` is cnnkit code, never the named object."""

    def __init__(self, module: str, name: str, call: Callable[[tuple], Any]):
        self.module, self.name, self.call = module, name, call


_UNSAFE = {b"i": "INST", b"o": "OBJ", b"\x81": "NEWOBJ", b"\x92": "NEWOBJ_EX",
           b"\x82": "EXT1", b"\x83": "EXT2", b"\x84": "EXT4", b"\x97": "NEXT_BUFFER",
           b"\x98": "READONLY_BUFFER"}


class RestrictedUnpickler:
    """``RestrictedUnpickler(data, source, resolve, persistent, budget).load()``."""

    def __init__(self, data: bytes, source: str, resolve: Callable[[str, str], Global],
                 persistent: Callable[[Any], Any], budget: MemoryBudget):
        self.data, self.pos, self.source = data, 0, source
        self.resolve, self.persistent, self.budget = resolve, persistent, budget
        self.stack: list[Any] = []
        self.marks: list[list[Any]] = []
        self.memo: dict[int, Any] = {}
        self.depth: dict[int, int] = {}  # id(container) -> nesting depth
        self.sealed: set[int] = set()
        self.keep: list[Any] = []  # containers kept alive so their ids stay unique
        self.ops = _dispatch_table()

    # ----- reading ---------------------------------------------------------------------------
    def fail(self, message: str, unsafe: bool = False) -> NoReturn:
        cls = UnsafeCheckpointError if unsafe else CheckpointFormatError
        raise cls(f"{self.source}: {message} (pickle byte {self.pos})")

    def take(self, n: int) -> bytes:
        if n < 0 or n > len(self.data) - self.pos:
            self.fail(f"truncated: {n} bytes wanted, {len(self.data) - self.pos} left")
        out = self.data[self.pos:self.pos + n]
        self.pos += n
        return out

    def unpack(self, fmt: str) -> Any:
        return struct.unpack(fmt, self.take(struct.calcsize(fmt)))[0]

    def line(self) -> str:
        end = self.data.find(b"\n", self.pos, self.pos + 256)
        if end < 0:
            self.fail("GLOBAL name not ended by a newline within 256 bytes")
        text = self.take(end - self.pos + 1)[:-1]
        return text.decode("utf-8", "replace")

    def load(self) -> Any:
        """The unpickled object (tensors and storages as the caller's placeholders)."""
        while True:
            if self.pos >= len(self.data):
                self.fail("ended without a STOP opcode")
            code = self.data[self.pos:self.pos + 1]
            self.pos += 1
            handler = self.ops.get(code)
            if handler is None:
                if code in _UNSAFE:
                    self.fail(f"refusing to load: opcode {_UNSAFE[code]} builds arbitrary "
                              f"objects", unsafe=True)
                self.fail(f"unsupported pickle opcode {code!r}")
            if handler(self):
                if not self.stack or self.marks:
                    self.fail("STOP with an unbalanced stack")
                return self.stack[-1]

    # ----- stack, memo, containers -----------------------------------------------------------
    def pop(self) -> Any:
        if not self.stack:
            self.fail("stack underflow")
        return self.stack.pop()

    def pop_mark(self) -> list[Any]:
        if not self.marks:
            self.fail("MARK expected")
        items, self.stack = self.stack, self.marks.pop()
        return items

    def new(self, obj: Any, payload: int = 0) -> Any:
        """Push a newly created object, charging its memory (None and bools are shared)."""
        cost = _CONTAINER_COST if isinstance(obj, (*_CONTAINERS, Global)) else _OBJECT_COST
        self.budget.charge(payload + (8 if obj is None or obj is True or obj is False else cost),
                           "the pickle's objects")
        if isinstance(obj, _CONTAINERS):
            self.keep.append(obj)
            self.depth[id(obj)] = 1
        self.stack.append(obj)
        return obj

    def place(self, item: Any, into: Any) -> None:
        """Nest ``item`` in ``into``: seal it, update ``into``'s depth."""
        if item is into:
            self.fail("a container holds itself", unsafe=True)
        if isinstance(item, _CONTAINERS):
            self.sealed.add(id(item))
            d = self.depth.get(id(item), 1) + 1
            if d > self.depth.get(id(into), 1):
                if d > MAX_DEPTH:
                    self.fail(f"containers nested deeper than {MAX_DEPTH} levels", unsafe=True)
                self.depth[id(into)] = d

    def target(self, kinds: tuple) -> Any:
        """The container an APPEND/SETITEM adds to: open, of the right kind."""
        if not self.stack or not isinstance(self.stack[-1], kinds):
            what = type(self.stack[-1]).__name__ if self.stack else "nothing"
            self.fail(f"adds items to a {what}")
        obj = self.stack[-1]
        if id(obj) in self.sealed:
            self.fail("modifies a container after nesting it", unsafe=True)
        return obj

    def tuple_of(self, items: list[Any]) -> tuple:
        t = tuple(items)
        self.new(t, 8 * len(t))
        for item in items:
            self.place(item, t)
        return t

    def append(self, items: list[Any]) -> None:
        lst = self.target((list,))
        self.budget.charge(8 * len(items), "the pickle's objects")
        for item in items:
            self.place(item, lst)
            lst.append(item)

    def setitems(self, items: list[Any]) -> None:
        dct = self.target((dict,))
        if len(items) % 2:
            self.fail("SETITEMS with an odd number of items")
        self.budget.charge(16 * len(items), "the pickle's objects")
        for k, v in zip(items[::2], items[1::2], strict=True):
            if not isinstance(k, _KEY_TYPES):
                self.fail(f"dict key of type {type(k).__name__}")
            self.place(k, dct)
            self.place(v, dct)
            try:
                dct[k] = v
            except TypeError:
                self.fail(f"unhashable dict key {short(k)}")

    def call(self, func: Any, args: Any) -> None:
        if not isinstance(func, Global) or not isinstance(args, tuple):
            self.fail(f"refusing to load: REDUCE on {short(func)} (only tensor rebuilds and "
                      f"OrderedDict may be called)", unsafe=True)
        self.place(args, func)
        self.new(func.call(args))

    def get(self, index: int) -> None:
        if index not in self.memo:
            self.fail(f"memo entry {index} read before it was written")
        self.stack.append(self.memo[index])

    def put(self, index: int) -> None:
        if not self.stack:
            self.fail("memo write from an empty stack")
        self.budget.charge(32, "the pickle's memo")
        self.memo[index] = self.stack[-1]


def _long(vm: RestrictedUnpickler, n: int) -> None:
    if n < 0 or n > MAX_INT_BYTES:
        vm.fail(f"an integer of {n} bytes (at most {MAX_INT_BYTES} are read)")
    vm.new(int.from_bytes(vm.take(n), "little", signed=True), n)


def _text(vm: RestrictedUnpickler, n: int) -> None:
    raw = vm.take(n)
    try:
        vm.new(raw.decode("utf-8", "surrogatepass"), n)
    except UnicodeDecodeError:
        vm.fail("a string that is not UTF-8")


def _global(vm: RestrictedUnpickler, module: Any, name: Any) -> None:
    if not isinstance(module, str) or not isinstance(name, str):
        vm.fail("STACK_GLOBAL on non-strings")
    vm.new(vm.resolve(module, name))


def _build(vm: RestrictedUnpickler) -> None:
    state = vm.pop()
    obj = vm.stack[-1] if vm.stack else None
    if not isinstance(obj, dict) or not isinstance(state, (dict, tuple, type(None))):
        vm.fail(f"refusing to load: BUILD on {type(obj).__name__} (only a dict's attributes "
                f"may be set)", unsafe=True)
    vm.place(state, obj)  # OrderedDict attributes (torch's _metadata) are dropped


def _proto(vm: RestrictedUnpickler) -> None:
    if vm.unpack("<B") > 5:
        vm.fail("pickle protocol above 5")


def _dict_from(vm: RestrictedUnpickler, items: list[Any]) -> None:
    vm.new({})
    vm.setitems(items)


def _list_from(vm: RestrictedUnpickler, items: list[Any]) -> None:
    vm.new([])
    vm.append(items)


def _dispatch_table() -> dict[bytes, Callable[[RestrictedUnpickler], Any]]:
    """opcode -> handler; a handler returning True ends the load (STOP)."""
    R = RestrictedUnpickler
    ops: dict[bytes, Callable[[R], Any]] = {
        b"\x80": _proto,
        b"\x95": lambda vm: vm.unpack("<Q") and None,  # FRAME: a hint, nothing to do
        b".": lambda vm: True,
        b"(": lambda vm: (vm.marks.append(vm.stack), setattr(vm, "stack", [])) and None,
        b"0": lambda vm: vm.pop() and None,
        b"1": lambda vm: vm.pop_mark() and None,
        b"2": lambda vm: vm.stack.append(vm.stack[-1]) if vm.stack else vm.fail("DUP empty"),
        b"N": lambda vm: vm.new(None) and None,
        b"\x88": lambda vm: vm.new(True) and None,
        b"\x89": lambda vm: vm.new(False) and None,
        b"J": lambda vm: vm.new(vm.unpack("<i")) and None,
        b"K": lambda vm: vm.new(vm.unpack("<B")) and None,
        b"M": lambda vm: vm.new(vm.unpack("<H")) and None,
        b"\x8a": lambda vm: _long(vm, vm.unpack("<B")),
        b"\x8b": lambda vm: _long(vm, vm.unpack("<i")),
        b"G": lambda vm: vm.new(vm.unpack(">d")) and None,
        b"X": lambda vm: _text(vm, vm.unpack("<I")),
        b"\x8c": lambda vm: _text(vm, vm.unpack("<B")),
        b"\x8d": lambda vm: _text(vm, vm.unpack("<Q")),
        b"B": lambda vm: vm.new(bytes(vm.take(n := vm.unpack("<I"))), n) and None,
        b"C": lambda vm: vm.new(bytes(vm.take(n := vm.unpack("<B"))), n) and None,
        b"\x8e": lambda vm: vm.new(bytes(vm.take(n := vm.unpack("<Q"))), n) and None,
        b"T": lambda vm: vm.new(vm.take(n := vm.unpack("<i")).decode("latin-1"), n) and None,
        b"U": lambda vm: vm.new(vm.take(n := vm.unpack("<B")).decode("latin-1"), n) and None,
        b")": lambda vm: vm.tuple_of([]) and None,
        b"t": lambda vm: vm.tuple_of(vm.pop_mark()) and None,
        b"\x85": lambda vm: vm.tuple_of([vm.pop()]) and None,
        b"\x86": lambda vm: vm.tuple_of(list(reversed([vm.pop(), vm.pop()]))) and None,
        b"\x87": lambda vm: vm.tuple_of(list(reversed([vm.pop(), vm.pop(), vm.pop()]))) and None,
        b"]": lambda vm: vm.new([]) and None,
        b"a": lambda vm: vm.append([vm.pop()]),
        b"e": lambda vm: vm.append(vm.pop_mark()),
        b"l": lambda vm: _list_from(vm, vm.pop_mark()),
        b"}": lambda vm: vm.new({}) and None,
        b"s": lambda vm: vm.setitems(list(reversed([vm.pop(), vm.pop()]))),
        b"u": lambda vm: vm.setitems(vm.pop_mark()),
        b"d": lambda vm: _dict_from(vm, vm.pop_mark()),
        b"q": lambda vm: vm.put(vm.unpack("<B")),
        b"r": lambda vm: vm.put(vm.unpack("<I")),
        b"\x94": lambda vm: vm.put(len(vm.memo)),
        b"h": lambda vm: vm.get(vm.unpack("<B")),
        b"j": lambda vm: vm.get(vm.unpack("<I")),
        b"c": lambda vm: _global(vm, vm.line(), vm.line()),
        b"\x93": lambda vm: _global(vm, *reversed([vm.pop(), vm.pop()])),
        b"R": lambda vm: vm.call(*reversed([vm.pop(), vm.pop()])),
        b"b": _build,
        b"Q": lambda vm: vm.new(vm.persistent(vm.pop())) and None,
    }
    return ops


__all__ = ["RestrictedUnpickler", "Global", "MAX_DEPTH"]
