"""graph4mm.gather: SDDMM / SpMM kernels on neighbour lists against dense references, and their gradients."""
from __future__ import annotations

import pytest
import torch

from graph4mm import HopDiffusedAttention, HopDiffusedAttentionConfig, gather
from tests.graph4mm.graph4mm_helpers import random_adj, to_neighbors


def _case(rows: int, src_rows: int, slots: int, dim: int, seed: int, dtype=torch.float64):
    gen = torch.Generator().manual_seed(seed)
    a = torch.randn(rows, dim, generator=gen, dtype=dtype)
    b = torch.randn(src_rows, dim, generator=gen, dtype=dtype)
    index = torch.randint(0, src_rows, (rows, slots), generator=gen)
    w = torch.rand(rows, slots, generator=gen, dtype=dtype)
    return a, b, index, w


@pytest.mark.parametrize(("rows", "src_rows", "slots"), [(7, 9, 4), (5, 3, 8), (1, 1, 3), (6, 6, 0)])
def test_kernels_match_dense_references(rows, src_rows, slots):
    """Includes more slots than source rows (repeated indices) and an empty neighbour list."""
    a, b, index, w = _case(rows, src_rows, slots, 5, seed=rows)
    assert torch.allclose(gather.gather_dot(a, b, index), torch.einsum("rsc,rc->rs", b[index], a))
    assert torch.allclose(gather._sddmm_blocked(a, b, index), torch.einsum("rsc,rc->rs", b[index], a))
    assert torch.allclose(gather.gather_sum(w, b, index), torch.einsum("rs,rsc->rc", w, b[index]))
    src = b[:rows] if src_rows >= rows else torch.randn(rows, 5, dtype=b.dtype)
    expected = torch.zeros(src_rows, 5, dtype=b.dtype).index_add_(
        0, index.reshape(-1), (w[..., None] * src[:, None]).reshape(-1, 5))
    assert torch.allclose(gather.scatter_sum(w, src, index, src_rows), expected)


def test_kernels_accept_strided_head_views():
    x = torch.randn(6, 3, 4)  # (rows, heads, Dh): head 1 is a strided view
    index = torch.randint(0, 6, (6, 5), generator=torch.Generator().manual_seed(0))
    head = x[:, 1]
    assert torch.allclose(gather.gather_dot(head, head, index), torch.einsum("rsc,rc->rs", head[index], head))


def test_gradients_match_finite_differences():
    a, b, index, w = _case(6, 8, 5, 3, seed=1)
    a.requires_grad_(True)
    b.requires_grad_(True)
    w.requires_grad_(True)
    assert torch.autograd.gradcheck(lambda a, b: gather.gather_dot(a, b, index), (a, b))
    assert torch.autograd.gradcheck(lambda w, b: gather.gather_sum(w, b, index), (w, b))


def test_sparse_layer_gradients_equal_dense_layer_gradients():
    """Training uses the sparse path: its parameter gradients equal the dense path's."""
    torch.manual_seed(0)
    layer = HopDiffusedAttention(HopDiffusedAttentionConfig(dim=8, heads=2, K=2)).double()
    adj = random_adj(2, 7, 0.4, 3)
    neighbors, mask = to_neighbors(adj, seed=2)
    x = torch.randn(2, 7, 8, dtype=torch.float64)
    grads = []
    for kwargs in ({"adj": adj}, {"neighbors": neighbors, "neighbor_mask": mask}):
        layer.zero_grad()
        layer(x, **kwargs).pow(2).sum().backward()
        grads.append({n: p.grad.clone() for n, p in layer.named_parameters()})
    for name in grads[0]:
        assert torch.allclose(grads[0][name], grads[1][name], atol=1e-10), name


def test_inference_in_row_chunks_equals_the_autograd_path():
    """A long graph at inference runs the node-wise block in row chunks; the result is unchanged."""
    torch.manual_seed(0)
    layer = HopDiffusedAttention(HopDiffusedAttentionConfig(dim=8, heads=2, ffn_ratio=2048.0)).eval()
    n = 3 * layer._rows_per_chunk + 5
    neighbors = torch.randint(0, n, (1, n, 4), generator=torch.Generator().manual_seed(1))
    x = torch.randn(1, n, 8)
    with torch.no_grad():
        chunked = layer(x, neighbors=neighbors)
    whole = layer(x, neighbors=neighbors)  # autograd on: one block
    assert torch.allclose(chunked, whole, atol=1e-5)
