"""The ordered matrix product of the reference backend (the training harness's matmul).

Every output element is one sequential float32 sum over ``k``, from +0.0,
each product and each addition rounded to float32 on its own (numpy's float32
``multiply`` and ``add`` never fuse), so the result does not depend on a BLAS
library's kernel, blocking or thread count.  Vectorised over the output's rows
and columns; the loop over ``k`` is the summation order.
"""

from __future__ import annotations

import numpy as np

#: Overflow to +/-Inf and Inf - Inf = NaN are the IEEE results the order asks for; numpy must not warn.
_quiet = np.errstate(over="ignore", invalid="ignore", under="ignore")


@_quiet
def matmul_ordered(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Matrix product in one spec'd order: float32 ``(n, k) x (k, m) -> (n, m)``, a new array.

    .. math::

        c_{ij} = \\mathrm{f32}(\\cdots\\mathrm{f32}(\\mathrm{f32}(0 + \\mathrm{f32}(a_{i0} b_{0j}))
                 + \\mathrm{f32}(a_{i1} b_{1j})) \\cdots + \\mathrm{f32}(a_{i,k-1} b_{k-1,j}))

    The sum starts from +0.0 and adds the products in the order of ``k``;
    every product and every addition is rounded to float32 (never fused).
    With ``k = 0`` every element is +0.0.  ``a`` and ``b`` are C-contiguous
    float32.
    """
    c = np.zeros((a.shape[0], b.shape[1]), dtype=np.float32)
    product = np.empty_like(c)
    for k in range(a.shape[1]):
        np.multiply(a[:, k, None], b[None, k, :], out=product)
        np.add(c, product, out=c)
    return c


KERNELS = {"matmul_ordered": matmul_ordered}
