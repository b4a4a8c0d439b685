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
    nbr = gather.NeighborIndex(index, src_rows)
    assert torch.allclose(gather.gather_dot(a, b, nbr), torch.einsum("rsc,rc->rs", b[index], a))
    assert torch.allclose(gather._sddmm_blocked(a, b, index), torch.einsum("rsc,rc->rs", b[index], a))
    assert torch.allclose(gather.gather_sum(w, b, nbr), torch.einsum("rs,rsc->rc", w, b[index]))
    expected = torch.zeros(src_rows, 5, dtype=a.dtype).index_add_(
        0, index.reshape(-1), (w[..., None] * a[:, None]).reshape(-1, 5))
    assert torch.allclose(gather.scatter_sum(w, a, nbr), expected)


def test_neighbor_index_offsets_each_sample_and_caches_its_transpose():
    neighbors = torch.tensor([[[1, 2], [0, 0], [1, 1]], [[2, 0], [2, 1], [0, 1]]])
    nbr = gather.NeighborIndex.from_neighbors(neighbors)
    assert nbr.sources == 6 and nbr.index.tolist() == [[1, 2], [0, 0], [1, 1], [5, 3], [5, 4], [3, 4]]
    assert nbr.crow.tolist() == [0, 2, 4, 6, 8, 10, 12]
    assert nbr.transposed is nbr.transposed  # computed once
    readers, offsets, _ = nbr.transposed
    assert offsets.tolist() == [0, 2, 5, 6, 8, 10]  # in-degrees 2, 3, 1, 2, 2, 2
    assert sorted(readers[0:2].tolist()) == [1, 1] and sorted(readers[2:5].tolist()) == [0, 2, 2]


def test_kernels_accept_strided_head_views():
    x = torch.randn(6, 3, 4)  # (rows, heads, Dh): head 1 is a strided view
    index = torch.randint(0, 6, (6, 5), generator=torch.Generator().manual_seed(0))
    head, nbr = x[:, 1], gather.NeighborIndex(index, 6)
    assert torch.allclose(gather.gather_dot(head, head, nbr), torch.einsum("rsc,rc->rs", head[index], head))
    w = torch.rand(6, 5)
    assert torch.allclose(gather.gather_sum(w, head, nbr), torch.einsum("rs,rsc->rc", w, head[index]))


def test_half_precision_uses_the_generic_kernel():
    a, b, index, w = _case(5, 6, 3, 4, seed=2, dtype=torch.float32)
    nbr = gather.NeighborIndex(index, 6)
    got = gather.gather_dot(a.bfloat16(), b.bfloat16(), nbr)
    assert got.dtype == torch.bfloat16
    assert torch.allclose(got.float(), gather.gather_dot(a, b, nbr), atol=0.1, rtol=0.05)


def test_gradients_match_finite_differences():
    a, b, index, w = _case(6, 8, 5, 3, seed=1)
    nbr = gather.NeighborIndex(index, 8)
    a.requires_grad_(True)
    b.requires_grad_(True)
    w.requires_grad_(True)
    assert torch.autograd.gradcheck(lambda a, b: gather.gather_dot(a, b, nbr), (a, b))
    assert torch.autograd.gradcheck(lambda w, b: gather.gather_sum(w, b, nbr), (w, b))


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
