"""The runtime's steps: what a layer computes at inference, as small dataclasses.

A layer says what it computes through its hook ``Layer.inference_step(steps, rank)``, which
receives this module (so layers import nothing above them) and returns one of these steps,
or None to run its own ``call`` under ``no_grad`` (:class:`LayerCall`). The compiler knows
no layer classes: the fusion passes (:mod:`.passes`) ask steps what they can absorb.

The step protocol (any object works; subclassing :class:`Step` gives the defaults):

- ``output``: what the step's result is: FRESH (a new array owned by the plan, which later
  steps may overwrite), VIEW (a view of its input) or UNKNOWN (anything, never overwritten);
- ``build(overwritable) -> fn``: the array function; ``overwritable[i]`` says whether input
  i is dead after this step and owned by the plan, so the step may write into it;
- ``with_padding(pads)``, ``with_affine(affine)``, ``with_activation(act)``,
  ``with_pool(pool, mid)``: this step with a following zero padding (before it), channel
  affine (batch-norm), activation or pooling (``mid``: the slot between them) absorbed, or
  None when it cannot take it;
  ``commutes_with(act)``: whether act(step(x)) equals step(act(x)), so that an activation
  may move from the step before to after this one;
  ``split_activation()``: (this step without its in-place activation, the activation).

The int8 steps (:mod:`.quantized_steps`) plug in the same way: ``cnnkit.deploy.quantize``
puts them in place of the fused float steps, and the plan's scheduling needs no change.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any, ClassVar

import numpy as np

from ..autograd import Tensor, no_grad
from . import compute
from .activations import UNSUPPORTED, Act, activation, clipped_relu

__all__ = ["FRESH", "VIEW", "UNKNOWN", "Step", "ActivationSlot", "Identity", "View", "ArrayFn",
           "Elementwise", "Concat", "ZeroPad", "Pool", "Conv", "ConvPool", "Dense",
           "ChannelAffine", "Activate", "Merge", "Call", "LayerCall", "Act", "activation",
           "clipped_relu", "UNSUPPORTED"]

Fn = Callable[[Any], Any]
Pads = tuple[tuple[int, int], ...]
FRESH, VIEW, UNKNOWN = "fresh", "view", "unknown"


class Step:
    """Defaults of the step protocol: absorbs nothing, commutes with nothing."""

    output: ClassVar[str] = UNKNOWN

    def build(self, overwritable: tuple[bool, ...]) -> Fn:
        raise NotImplementedError

    def with_padding(self, pads: Pads) -> Step | None:
        return None

    def with_affine(self, affine: ChannelAffine) -> Step | None:
        return None

    def with_activation(self, act: Act) -> Step | None:
        return None

    def with_pool(self, pool: Pool, mid: int) -> Step | None:
        return None

    def commutes_with(self, act: Act) -> bool:
        return False

    def split_activation(self) -> tuple[Step, Act] | None:
        """(this step without its in-place activation, that activation), or None."""
        return None


class ActivationSlot(Step):
    """A step (a dataclass with an ``act`` field) that applies an in-place activation on the
    new array it wrote."""

    act: Act | None

    def with_activation(self, act: Act) -> Step | None:
        if self.act is None and act.in_place:
            return replace(self, act=act)  # type: ignore[type-var]
        return None

    def split_activation(self) -> tuple[Step, Act] | None:
        if self.act is None or not self.act.in_place:
            return None
        return replace(self, act=None), self.act  # type: ignore[type-var]


@dataclass(frozen=True)
class Identity(Step):
    """y = x (input layers, dropout at inference, the linear activation)."""

    output: ClassVar[str] = VIEW

    def build(self, overwritable: tuple[bool, ...]) -> Fn:
        return _identity


def _identity(x: Any) -> Any:
    return x


@dataclass(frozen=True)
class View(Step):
    """y = fn(x), a view of x (reshape, flatten)."""

    fn: Fn
    output: ClassVar[str] = VIEW

    def build(self, overwritable: tuple[bool, ...]) -> Fn:
        return self.fn


@dataclass(frozen=True)
class ArrayFn(Step):
    """y = fn(x) (or fn([x0, x1, ...])), a new array; the step absorbs nothing."""

    fn: Fn
    output: ClassVar[str] = FRESH

    def build(self, overwritable: tuple[bool, ...]) -> Fn:
        return self.fn


@dataclass(frozen=True)
class Elementwise(ArrayFn):
    """y = fn(x), a new array, each value computed from the same position of x alone by
    exactly rounded elementwise operations (x * scale + offset): the same whatever else is in
    the batch."""


@dataclass(frozen=True)
class Concat(Step):
    """y = concatenate([x0, x1, ...], axis) (on codes too: the int8 graph gives the inputs
    one scale and zero point, so joining codes is exact)."""

    axis: int
    output: ClassVar[str] = FRESH

    def build(self, overwritable: tuple[bool, ...]) -> Fn:
        axis = self.axis
        return lambda xs: np.concatenate(xs, axis=axis)


@dataclass(frozen=True)
class Call(Step):
    """y = fn(x) for any callable whose result may be its input or shared (a nested plan)."""

    fn: Fn

    def build(self, overwritable: tuple[bool, ...]) -> Fn:
        return self.fn


@dataclass(frozen=True)
class LayerCall(Step):
    """The layer's own ``call`` on Tensors under ``no_grad`` (with the node's ``kwargs``):
    the step of every layer without an inference form."""

    layer: Any
    kwargs: dict = field(default_factory=dict)

    def build(self, overwritable: tuple[bool, ...]) -> Fn:
        layer, kw = self.layer, dict(self.kwargs)

        def run(x: Any) -> Any:
            with no_grad():
                args = [Tensor(a) for a in x] if isinstance(x, list) else Tensor(x)
                out = layer(args, training=False, **kw)
            return [o.data for o in out] if isinstance(out, (list, tuple)) else out.data

        return run


@dataclass(frozen=True)
class ZeroPad(Step):
    """y = x with pads[i] = (before, after) zeros around spatial axis i."""

    pads: Pads
    output: ClassVar[str] = FRESH

    def build(self, overwritable: tuple[bool, ...]) -> Fn:
        return compute.zero_pad_fn(self.pads)


@dataclass(frozen=True)
class Pool(Step):
    """Max or average pooling over windows ``pool`` at ``strides`` [then an activation]."""

    is_max: bool
    pool: tuple
    strides: tuple
    padding: str
    act: Act | None = None

    @property
    def one_tap(self) -> bool:
        """Windows of one value: the pooling is a strided view of its input."""
        return all(p == 1 for p in self.pool)

    @property
    def output(self) -> str:  # type: ignore[override]
        return VIEW if self.one_tap else FRESH

    def build(self, overwritable: tuple[bool, ...]) -> Fn:
        fn = compute.pool_fn(self.is_max, tuple(self.pool), tuple(self.strides), self.padding)
        act = self.act
        if act is None:
            return fn
        return lambda x: act.apply(fn(x), True)

    def commutes_with(self, act: Act) -> bool:
        # max is monotonic: relu(maxpool(z)) = maxpool(relu(z)), on fewer values after
        return self.is_max and act.in_place and not self.one_tap

    def with_activation(self, act: Act) -> Step | None:
        # in place on the pooled array (never on a view: it would write into the input)
        usable = self.act is None and act.in_place and not self.one_tap
        return replace(self, act=act) if usable else None


@dataclass(frozen=True)
class Conv(ActivationSlot):
    """act(BN(conv(zero_pad(x)))) of a convolution layer (its ``kernel``, ``bias``, strides,
    padding, dilation, groups; depthwise: kernel (KH, KW, C, M)), with a following zero
    padding, batch-norm and in-place activation absorbed."""

    layer: Any
    act: Act | None = None
    depthwise: bool = False
    extra_pads: Pads | None = None
    affine: Any = None
    output: ClassVar[str] = FRESH

    def build(self, overwritable: tuple[bool, ...]) -> Fn:
        return compute.conv_fn(self.layer, self.depthwise, self.affine, self.act,
                               self.extra_pads)

    def with_padding(self, pads: Pads) -> Step | None:
        if self.extra_pads is not None or len(pads) != self.layer.rank:
            return None
        return replace(self, extra_pads=pads)

    def with_affine(self, affine: ChannelAffine) -> Step | None:
        if self.act is not None or self.affine is not None or \
                affine.layer.dtype != self.layer.dtype or affine.act is not None:
            return None
        return replace(self, affine=affine.layer)

    def with_pool(self, pool: Pool, mid: int) -> Step | None:
        """This 2-D convolution and a following 2x2 / stride-2 "valid" max or average pooling,
        each with no activation or a clamp (ReLU, ReLU6, capped): one :class:`ConvPool`
        (``mid``: the slot between them)."""
        layer = self.layer
        if (self.depthwise or layer.rank != 2 or layer.groups != 1
                or all(k == 1 for k in layer.kernel_size)
                or tuple(pool.pool) != (2, 2) or tuple(pool.strides) != (2, 2)
                or pool.padding != "valid"
                or any(a is not None and a.bounds is None for a in (self.act, pool.act))):
            return None
        return ConvPool(self, pool, mid)


@dataclass(frozen=True)
class ConvPool(Step):
    """pool(conv(x)): a :class:`Conv` and the 2x2 / stride-2 max or average pooling after
    it (their activations clamps) as one pass of the C helper that never stores the
    convolution's full output (else the two steps one after the other). ``mid``: the value
    slot between them, for :meth:`unfused`."""

    conv: Conv
    pool: Pool
    mid: int
    output: ClassVar[str] = FRESH

    def build(self, overwritable: tuple[bool, ...]) -> Fn:
        return compute.conv_pool_fn(self.conv, self.pool)

    def unfused(self) -> tuple[Step, Step, int]:
        """(the convolution step, the pooling step, the slot between them)."""
        return self.conv, self.pool, self.mid


@dataclass(frozen=True)
class Dense(ActivationSlot):
    """act(BN(x W + b)) of a dense layer, with a following batch-norm and in-place activation
    absorbed."""

    layer: Any
    act: Act | None = None
    affine: Any = None
    output: ClassVar[str] = FRESH

    def build(self, overwritable: tuple[bool, ...]) -> Fn:
        return compute.dense_fn(self.layer, self.affine, self.act)

    with_affine = Conv.with_affine


@dataclass(frozen=True)
class ChannelAffine(ActivationSlot):
    """act(x * s + t) over the last axis: inference batch-norm of ``layer`` (its gamma, beta,
    moving mean and variance, epsilon), with a following in-place activation absorbed."""

    layer: Any
    act: Act | None = None
    output: ClassVar[str] = FRESH

    def build(self, overwritable: tuple[bool, ...]) -> Fn:
        return compute.affine_fn(self.layer, self.act, overwritable[0])


@dataclass(frozen=True)
class Activate(Step):
    """y = act(x), in place when x is dead and owned by the plan."""

    act: Act
    output: ClassVar[str] = FRESH

    def build(self, overwritable: tuple[bool, ...]) -> Fn:
        act, inplace = self.act, overwritable[0]
        return lambda x: act.apply(x, inplace)


@dataclass(frozen=True)
class Merge(ActivationSlot):
    """act(x0 op x1 op ...) for an elementwise NumPy ufunc ``op`` over equal shapes, written
    into a dead input; other shapes go through ``layer`` (its own broadcasting)."""

    layer: Any
    ufunc: Any
    act: Act | None = None
    output: ClassVar[str] = FRESH

    def build(self, overwritable: tuple[bool, ...]) -> Fn:
        target = overwritable.index(True) if any(overwritable) else None
        slow = LayerCall(self.layer).build(overwritable)
        return compute.merge_fn(self.ufunc, self.act, target, slow)


# ----------------------------------------------------------------------------------------
# int8 steps
# ----------------------------------------------------------------------------------------
