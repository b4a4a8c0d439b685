"""Neighbour-list kernels at linear cost: gathered dot products (SDDMM) and weighted gathered sums (SpMM).

A neighbour list is a :class:`NeighborIndex`: row ``r`` reads rows ``index[r, s]`` of a source with
``sources`` rows (a batch of graphs is flattened to ``R = B·N`` rows with per-sample offsets, see
:meth:`NeighborIndex.from_neighbors`). The attention layers call the kernels one head at a time
(``(R, Dh)`` operands): rows gathered at random then come from an ``N·Dh`` block instead of ``N·D``,
which stays in cache far longer, and no ``(R, S, Dh)`` tensor is ever formed.

* :func:`gather_dot` — ``out[r, s] = a[r] · b[index[r, s]]`` (``torch.sparse.sampled_addmm`` over a CSR
  pattern with ``S`` entries per row; a blocked gather on other devices);
* :func:`gather_sum` — ``out[r] = Σ_s w[r, s] · b[index[r, s]]`` (``F.embedding_bag`` in ``sum`` mode
  with per-sample weights: a fused gather-accumulate that never materialises the gathered rows);
* :func:`scatter_sum` — the transpose of :func:`gather_sum` (``embedding_bag`` over the transposed list,
  built once per :class:`NeighborIndex` and cached).

:func:`gather_dot` and :func:`gather_sum` are differentiable in their tensor arguments, and each gradient
is again one of these three kernels, so training costs stay ``O(R·S·C)`` too.
"""
from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.autograd.function import once_differentiable

__all__ = ["NeighborIndex", "gather_dot", "gather_sum", "scatter_sum"]

_BLOCK_ELEMENTS = 1 << 18  # gathered elements per block of the generic SDDMM (1 MiB of float32)


@dataclass(frozen=True, eq=False)
class NeighborIndex:
    """A neighbour list over rows, with its CSR row pointers and transpose cached on first use.

    Attributes:
        index: ``(R, S)`` long, row ``r`` reads source rows ``index[r, :]`` (all in ``[0, sources)``).
        sources: number of source rows ``R_src``.
    """

    index: Tensor  # (R, S) long
    sources: int  # R_src

    @classmethod
    def from_neighbors(cls, neighbors: Tensor) -> NeighborIndex:
        """``(B, N, S)`` indices into N → rows ``b·N + neighbors[b, i, s]`` of a ``(B·N, ·)`` tensor."""
        b, n, s = neighbors.shape
        offsets = torch.arange(b, device=neighbors.device)[:, None, None] * n
        return cls((neighbors + offsets).reshape(b * n, s), b * n)

    @cached_property
    def crow(self) -> Tensor:
        """``(R + 1,)`` CSR row pointers (``S`` entries per row)."""
        rows, slots = self.index.shape
        steps = torch.arange(rows + 1, device=self.index.device, dtype=self.index.dtype)
        return steps * slots

    @cached_property
    def transposed(self) -> tuple[Tensor, Tensor, Tensor]:
        """The list turned around: ``(readers (E,), offsets (R_src,), order (E,))``, ``E = R·S``.

        Entry ``order[e]`` of the flattened ``index`` is the ``e``-th edge once edges are grouped by the
        source row they read; ``readers[e] = order[e] // S`` is the row reading it, and source row ``j``
        owns ``readers[offsets[j]:offsets[j + 1]]``.
        """
        flat = self.index.reshape(-1)
        order = torch.argsort(flat, stable=True)
        counts = torch.bincount(flat, minlength=self.sources)
        return order // max(1, self.index.shape[1]), torch.cumsum(counts, 0) - counts, order


def _sddmm(a: Tensor, b: Tensor, nbr: NeighborIndex) -> Tensor:
    """``out[r, s] = a[r] · b[index[r, s]]`` without autograd; ``(R, C), (R_src, C)`` → ``(R, S)``.

    On CPU in float32/float64: ``torch.sparse.sampled_addmm`` over a CSR pattern with ``S`` entries per
    row (unsorted and repeated column indices are fine). Elsewhere: :func:`_sddmm_blocked`.
    """
    rows, slots = nbr.index.shape
    if rows * slots == 0:
        return a.new_zeros(rows, slots)
    if a.device.type != "cpu" or a.dtype not in (torch.float32, torch.float64):
        return _sddmm_blocked(a, b, nbr.index)
    if b.shape[0] < slots:  # sampled_addmm needs nnz per row <= number of columns: pad with unused rows
        b = torch.cat([b, b.new_zeros(slots - b.shape[0], b.shape[1])])
    values = a.new_zeros(rows * slots)  # written in place: the pattern is its own output (no CSR copy)
    with warnings.catch_warnings():  # "sparse CSR support is in beta"
        warnings.filterwarnings("ignore", message=".*[Ss]parse CSR tensor support is in beta.*")
        pattern = torch.sparse_csr_tensor(nbr.crow, nbr.index.reshape(-1), values, (rows, b.shape[0]),
                                          check_invariants=False)
        torch.sparse.sampled_addmm(pattern, a.contiguous(), b.contiguous().T, beta=0.0, out=pattern)
    return values.view(rows, slots)


def _sddmm_blocked(a: Tensor, b: Tensor, index: Tensor) -> Tensor:
    """Generic :func:`_sddmm`: gathers ``b`` rows for one block of ``a`` rows at a time (``O(block)`` memory).

    Shapes:
        a: ``(R, C)``; b: ``(R_src, C)``; index: ``(R, S)`` → ``(R, S)``.
    """
    rows, slots = index.shape
    out = a.new_empty(rows, slots)
    step = max(1, _BLOCK_ELEMENTS // max(1, slots * a.shape[1]))
    for start in range(0, rows, step):
        block = index[start:start + step]
        part = b.index_select(0, block.reshape(-1)).view(block.shape[0], slots, b.shape[1])
        torch.linalg.vecdot(part, a[start:start + step, None], out=out[start:start + step])
    return out


def _spmm(w: Tensor, b: Tensor, nbr: NeighborIndex) -> Tensor:
    """``out[r] = Σ_s w[r, s] · b[index[r, s]]`` without autograd; ``(R, S), (R_src, C)`` → ``(R, C)``."""
    if nbr.index.shape[1] == 0:
        return b.new_zeros(nbr.index.shape[0], b.shape[1])
    return F.embedding_bag(nbr.index, b, per_sample_weights=w.contiguous(), mode="sum")


def scatter_sum(w: Tensor, a: Tensor, nbr: NeighborIndex) -> Tensor:
    """Transpose of :func:`gather_sum`: ``out[j] = Σ_{(r, s): index[r, s] = j} w[r, s] · a[r]`` (no autograd).

    Shapes:
        w: ``(R, S)``; a: ``(R, C)`` → ``(R_src, C)``.
    """
    if nbr.index.numel() == 0:
        return a.new_zeros(nbr.sources, a.shape[1])
    readers, offsets, order = nbr.transposed
    return F.embedding_bag(readers, a, offsets, per_sample_weights=w.reshape(-1)[order], mode="sum")


def _bilinear_function(op: Callable, grad_first: Callable, grad_second: Callable, doc: str) -> type:
    """An autograd Function for ``out = op(x, b, nbr)``, bilinear in ``x`` and ``b``, with linear-cost gradients
    ``grad_first(g, b, nbr)`` for ``x`` and ``grad_second(x, g, nbr)`` for ``b``."""

    class _Bilinear(torch.autograd.Function):
        @staticmethod
        def forward(ctx, x: Tensor, b: Tensor, nbr: NeighborIndex) -> Tensor:  # noqa: D102
            ctx.save_for_backward(x, b)
            ctx.nbr = nbr
            return op(x, b, nbr)

        @staticmethod
        @once_differentiable
        def backward(ctx, grad: Tensor) -> tuple[Tensor | None, Tensor | None, None]:  # noqa: D102
            x, b = ctx.saved_tensors
            grad_x = grad_first(grad, b, ctx.nbr) if ctx.needs_input_grad[0] else None
            grad_b = grad_second(x, grad, ctx.nbr) if ctx.needs_input_grad[1] else None
            return grad_x, grad_b, None

    _Bilinear.__doc__ = doc
    return _Bilinear


# out = sddmm(a, b): gradients spmm(g, b) for a and scatter_sum(g, a) for b
_GatherDot = _bilinear_function(_sddmm, _spmm, lambda a, g, nbr: scatter_sum(g, a, nbr), "sddmm(a, b)")
# out = spmm(w, b): gradients sddmm(g, b) for w and scatter_sum(w, g) for b
_GatherSum = _bilinear_function(_spmm, _sddmm, lambda w, g, nbr: scatter_sum(w, g, nbr), "spmm(w, b)")


def gather_dot(a: Tensor, b: Tensor, nbr: NeighborIndex) -> Tensor:
    """Dot products with gathered rows, ``out[r, s] = a[r] · b[index[r, s]]`` (differentiable in a, b).

    Shapes:
        a: ``(R, C)``; b: ``(R_src, C)`` → ``(R, S)``.
    """
    return _GatherDot.apply(a, b, nbr)


def gather_sum(w: Tensor, b: Tensor, nbr: NeighborIndex) -> Tensor:
    """Weighted sums of gathered rows, ``out[r] = Σ_s w[r, s] · b[index[r, s]]`` (differentiable in w, b).

    Shapes:
        w: ``(R, S)``; b: ``(R_src, C)`` → ``(R, C)``.
    """
    return _GatherSum.apply(w, b, nbr)
