"""GradBuffer: one flat float32 tensor that holds a model's gradients, and whose views become the ``p.grad`` tensors.

The buffer is laid out as the trainer's :class:`~vsaopt._grads.ParamLayout`
(declaration order, each parameter in C order), so the trainer records from it
and predicts into it through one DLPack view, and float32 parameters can take
slices of it as their ``p.grad``: a predicted gradient is then written once,
straight where the optimizer reads it.  A backward step's gradients are read
where they are (any float32 contiguous ``p.grad``), once, by the trainer.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from ..errors import BackendError, DTypeError, ShapeError
from ._dlpack import FLOAT_DTYPES, to_array

__all__ = ["GradBuffer"]


class GradBuffer:
    """The flat float32 gradient buffer of ``params`` and its per-parameter views.

    Parameters
    ----------
    params : sequence of (name, parameter)
        The parameters the trainer follows, in its declaration order.
    device : torch.device
        Where the parameters (and the buffer) live.

    Attributes
    ----------
    flat : torch.Tensor
        1-D float32, one element per parameter element.
    array : numpy or cupy array
        ``flat`` as the backend's array (shared memory).
    views : list of torch.Tensor
        ``flat`` sliced and shaped as each parameter.
    array_views : list of numpy or cupy arrays
        The same slices of ``array``, flat (1-D).

    Notes
    -----
    Whether a parameter's ``p.grad`` can be its view is decided at each call
    from the parameter's dtype then (float32: a view; other floating dtypes: a
    converted copy), so a model cast after construction (``model.double()``,
    ``.half()``) is followed.

    Examples
    --------
    >>> import torch
    >>> w = torch.nn.Parameter(torch.zeros(2, 2, dtype=torch.float64))
    >>> buf = GradBuffer([("w", w)], w.device)
    >>> w.grad = torch.ones(2, 2, dtype=torch.float64)
    >>> arrays, present = buf.sources([("w", w)])
    >>> present, arrays[0].shape, arrays[0].dtype, buf.flat.tolist()   # converted into the buffer
    ([True], (4,), dtype('float32'), [1.0, 1.0, 1.0, 1.0])
    """

    def __init__(self, params: Sequence[tuple[str, torch.Tensor]], device: torch.device) -> None:
        sizes = [p.numel() for _, p in params]
        self.flat = torch.zeros(sum(sizes), dtype=torch.float32, device=device)
        self.array = to_array(self.flat)
        self.views: list[torch.Tensor] = []
        self.array_views: list[Any] = []
        off = 0
        for (_, p), n in zip(params, sizes):
            self.views.append(self.flat[off : off + n].view(p.shape))
            self.array_views.append(self.array[off : off + n])
            off += n

    def holds(self, k: int, g: torch.Tensor) -> bool:
        """Whether ``g`` is parameter ``k``'s view of this buffer (same memory, shape and strides)."""
        v = self.views[k]
        return g.data_ptr() == v.data_ptr() and g.dtype == v.dtype and g.stride() == v.stride() and g.shape == v.shape

    def sources(self, params: Sequence[tuple[str, torch.Tensor]], trainable: Sequence[bool] | None = None) -> tuple[list[Any], list[bool]]:
        """Every ``p.grad`` as a flat float32 backend array (C order), for the trainer to read once.

        A float32 contiguous ``p.grad`` (its view of this buffer or any other
        tensor) is shared as it is, without a copy.  Any other gradient is
        converted into the parameter's slice of the buffer first (float16,
        bfloat16, float64 or strided).  A parameter whose ``p.grad`` is None, or
        that is not trainable now (``trainable[k]`` False: frozen since; its
        ``p.grad`` is stale), has no gradient this step: its slice is set to
        zeros and it is reported absent (a ``p.grad`` that is its view is first
        given memory of its own, :meth:`release`).  Only slices that no
        ``p.grad`` views are written, and only after every check passed, so a
        call that raises changes nothing a caller can see.  Values are not
        checked: the trainer's pass over them is the finite check.

        Returns
        -------
        arrays : list
            Per parameter, a 1-D backend array of its elements.
        present : list of bool
            Per parameter, whether it had a gradient.

        Raises
        ------
        DTypeError
            A sparse gradient or one of a non-floating dtype.
        ShapeError
            A gradient whose shape is not its slice's (the parameter changed shape).
        BackendError
            A gradient on another device than the buffer.
        """
        if trainable is None:
            trainable = [True] * len(params)
        grads = [p.grad if t else None for (_, p), t in zip(params, trainable)]
        for (name, _), g, view in zip(params, grads, self.views):
            if g is None:
                continue
            if g.shape != view.shape:
                raise ShapeError(f"record_gradients: gradient of {name!r} has shape {tuple(g.shape)}, the parameter was declared {tuple(view.shape)}")
            if g.layout != torch.strided:
                raise DTypeError(f"gradient of {name!r}: expected a dense (strided) tensor, got layout {g.layout}")
            if g.dtype not in FLOAT_DTYPES:
                raise DTypeError(f"gradient of {name!r}: expected a float32, float16, bfloat16 or float64 tensor, got {g.dtype}")
            if g.device != self.flat.device:
                raise BackendError(f"record_gradients: gradient of {name!r} is on {g.device}, parameters on {self.flat.device}")
        self.release(params, [g is not None for g in grads])
        arrays = []
        with torch.no_grad():
            for k, g in enumerate(grads):
                if g is not None and self.holds(k, g):
                    arrays.append(self.array_views[k])
                elif g is not None and g.dtype == torch.float32 and g.is_contiguous() and not g.is_neg():
                    arrays.append(to_array(g).reshape(-1))
                else:
                    if g is None:
                        self.views[k].zero_()
                    else:
                        self.views[k].copy_(g)
                    arrays.append(self.array_views[k])
        return arrays, [g is not None for g in grads]

    def release(self, params: Sequence[tuple[str, torch.Tensor]], keep: Sequence[bool]) -> None:
        """Give each ``p.grad`` that is its view of this buffer but not kept (``keep[k]`` False) memory of its own.

        The values stay; the buffer's next write (a recorded absent slice, a
        prediction) then no longer shows in that ``p.grad``.
        """
        with torch.no_grad():
            for k, ((_, p), kept) in enumerate(zip(params, keep)):
                if not kept and p.grad is not None and self.holds(k, p.grad):
                    p.grad = p.grad.clone()

    def overflowing(self, params: Sequence[tuple[str, torch.Tensor]], write: Sequence[bool]) -> list[str]:
        """Names of written parameters whose float32 slice is not finite in the parameter's own dtype.

        A float16 parameter overflows from about 65520 on; bfloat16 and float64
        hold every finite float32.  Only float16 parameters cost a pass.
        """
        bad = []
        for k, ((name, p), w) in enumerate(zip(params, write)):
            if w and p.dtype == torch.float16 and not bool(torch.isfinite(self.views[k].to(torch.float16)).all()):
                bad.append(name)
        return bad

    def install(self, params: Sequence[tuple[str, torch.Tensor]], write: Sequence[bool]) -> None:
        """Put the buffer's values into each written parameter's ``p.grad``.

        A float32 parameter's ``p.grad`` becomes its view of the buffer (kept
        when it already is); another floating dtype's ``p.grad`` gets the values
        converted (rounded to nearest), allocated when None.  Parameters not
        written keep their ``p.grad``.
        """
        with torch.no_grad():
            for k, ((_, p), w) in enumerate(zip(params, write)):
                if not w:
                    continue
                if p.dtype == torch.float32:
                    if p.grad is None or not self.holds(k, p.grad):
                        p.grad = self.views[k]
                elif p.grad is None or p.grad.dtype != p.dtype or p.grad.shape != p.shape:
                    p.grad = self.views[k].to(p.dtype)
                else:
                    p.grad.copy_(self.views[k])

    def __repr__(self) -> str:
        return f"GradBuffer(elements={self.flat.numel()}, parameters={len(self.views)})"
