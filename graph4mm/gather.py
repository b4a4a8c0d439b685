"""Neighbour-list kernels at linear cost: gathered dot products (SDDMM) and weighted gathered sums (SpMM).

A neighbour list is given as ``index (R, S)``: row ``r`` reads rows ``index[r, s]`` of a source with ``R``
rows (a batch of graphs is flattened to ``R = B·N`` rows with per-sample offsets, see :func:`flat_index`).
Both kernels run on one head at a time (``(R, Dh)`` operands): the rows gathered at random then come from
an ``N·Dh`` block instead of ``N·D``, which keeps them in cache far longer, and no ``(R, S, Dh)`` tensor
is ever formed.

* :func:`gather_dot` — ``out[r, s] = a[r] · b[index[r, s]]`` (``torch.sparse.sampled_addmm`` on a CSR
  pattern with ``S`` entries per row);
* :func:`gather_sum` — ``out[r] = Σ_s w[r, s] · src[index[r, s]]`` (``F.embedding_bag`` in ``sum`` mode
  with per-sample weights, a fused gather-accumulate that never materialises the gathered rows).

Both are differentiable in their tensor arguments; every gradient is again one of these linear-cost
kernels (the transpose of a neighbour list is an ``embedding_bag`` over variable-length bags).
"""
from __future__ import annotations

import warnings

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.autograd.function import once_differentiable

__all__ = ["flat_index", "gather_dot", "gather_sum", "scatter_sum"]


def flat_index(neighbors: Tensor) -> Tensor:
    """``(B, N, S)`` neighbour indices into N → ``(B·N, S)`` row indices into a ``(B·N, ·)`` tensor."""
    b, n, s = neighbors.shape
    offsets = torch.arange(b, device=neighbors.device)[:, None, None] * n
    return (neighbors + offsets).reshape(b * n, s)


def gather_sum(weights: Tensor, src: Tensor, index: Tensor) -> Tensor:
    """Weighted sum of gathered rows, ``out[r] = Σ_s weights[r, s] · src[index[r, s]]``.

    Shapes:
        weights: ``(R, S)``; src: ``(R_src, C)``; index: ``(R, S)`` long in ``[0, R_src)`` → ``(R, C)``.
    """
    if index.shape[-1] == 0:
        return src.new_zeros(index.shape[0], src.shape[-1])
    return F.embedding_bag(index, src, per_sample_weights=weights.contiguous(), mode="sum")


def scatter_sum(weights: Tensor, src: Tensor, index: Tensor, rows: int) -> Tensor:
    """Transpose of :func:`gather_sum`: ``out[j] = Σ_{(r, s): index[r, s] = j} weights[r, s] · src[r]``.

    Shapes:
        weights: ``(R, S)``; src: ``(R, C)``; index: ``(R, S)`` long in ``[0, rows)`` → ``(rows, C)``.
    """
    slots = index.shape[-1]
    flat = index.reshape(-1)
    if flat.numel() == 0:
        return src.new_zeros(rows, src.shape[-1])
    order = torch.argsort(flat, stable=True)  # edges grouped by the row they point at
    counts = torch.bincount(flat, minlength=rows)
    offsets = torch.cumsum(counts, 0) - counts
    return F.embedding_bag(order // slots, src, offsets, per_sample_weights=weights.reshape(-1)[order],
                           mode="sum")


_BLOCK_ELEMENTS = 1 << 18  # gathered elements per block of the generic SDDMM (1 MiB of float32)


def _sddmm(a: Tensor, b: Tensor, index: Tensor) -> Tensor:
    """``out[r, s] = a[r] · b[index[r, s]]`` without autograd; ``(R, C), (R_src, C), (R, S)`` → ``(R, S)``.

    On CPU: ``torch.sparse.sampled_addmm`` over a CSR pattern with ``S`` entries per row (unsorted and
    repeated column indices are fine). Elsewhere: :func:`_sddmm_blocked`.
    """
    rows, slots = index.shape
    if rows * slots == 0:
        return a.new_zeros(rows, slots)
    if a.device.type != "cpu":
        return _sddmm_blocked(a, b, index)
    if b.shape[0] < slots:  # sampled_addmm needs nnz per row <= number of columns: pad with unused rows
        b = torch.cat([b, b.new_zeros(slots - b.shape[0], b.shape[1])])
    crow = torch.arange(0, rows * slots + 1, slots, device=index.device, dtype=index.dtype)
    with warnings.catch_warnings():  # "sparse CSR support is in beta"
        warnings.filterwarnings("ignore", message=".*[Ss]parse CSR tensor support is in beta.*")
        pattern = torch.sparse_csr_tensor(crow, index.reshape(-1), a.new_zeros(rows * slots),
                                          (rows, b.shape[0]), check_invariants=False)
        out = torch.sparse.sampled_addmm(pattern, a.contiguous(), b.contiguous().T, beta=0.0)
    return out.values().view(rows, slots)


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


class _GatherDot(torch.autograd.Function):
    """Autograd wrapper of :func:`_sddmm` whose gradients are :func:`gather_sum` / :func:`scatter_sum`."""

    @staticmethod
    def forward(ctx, a: Tensor, b: Tensor, index: Tensor) -> Tensor:  # noqa: D102
        ctx.save_for_backward(a, b, index)
        return _sddmm(a, b, index)

    @staticmethod
    @once_differentiable
    def backward(ctx, grad: Tensor) -> tuple[Tensor | None, Tensor | None, None]:  # noqa: D102
        a, b, index = ctx.saved_tensors
        grad_a = gather_sum(grad, b, index) if ctx.needs_input_grad[0] else None
        grad_b = scatter_sum(grad, a, index, b.shape[0]) if ctx.needs_input_grad[1] else None
        return grad_a, grad_b, None


def gather_dot(a: Tensor, b: Tensor, index: Tensor) -> Tensor:
    """Dot products with gathered rows, ``out[r, s] = a[r] · b[index[r, s]]`` (differentiable in a and b).

    Shapes:
        a: ``(R, C)``; b: ``(R_src, C)``; index: ``(R, S)`` long in ``[0, R_src)`` → ``(R, S)``.
    """
    return _GatherDot.apply(a, b, index)
