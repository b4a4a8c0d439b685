"""graph4mm.ops: masked softmax, PPR diffusion, structures, BFS distances, neighbour lists."""
from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from graph4mm import ops
from tests.graph4mm.graph4mm_helpers import bfs_distances, random_adj, to_neighbors


def test_masked_softmax_matches_softmax_on_full_mask_and_zero_rows_without_nan():
    torch.manual_seed(0)
    s = torch.randn(3, 5, requires_grad=True)
    mask = torch.ones(3, 5, dtype=torch.bool)
    mask[1] = False  # a node with no neighbours
    mask[2, :3] = False
    t = ops.masked_softmax(s, mask)
    assert torch.allclose(t[0], torch.softmax(s[0], -1))
    assert torch.equal(t[1], torch.zeros(5))
    assert torch.allclose(t[2, 3:], torch.softmax(s[2, 3:], -1)) and torch.equal(t[2, :3], torch.zeros(3))
    t.sum().backward()
    assert torch.isfinite(s.grad).all() and torch.equal(s.grad[1], torch.zeros(5))


def test_masked_softmax_weights_are_a_multiplicative_prior():
    s = torch.tensor([[0.3, -1.0, 2.0]])
    w = torch.tensor([[2.0, 0.0, 0.5]])
    t = ops.masked_softmax(s, torch.ones_like(s, dtype=torch.bool), w)
    expected = w * s.exp() / (w * s.exp()).sum()
    assert torch.allclose(t, expected)


def test_ppr_diffusion_equals_explicit_matrix_powers():
    torch.manual_seed(1)
    t = torch.softmax(torch.randn(1, 2, 6, 6), -1)
    v = torch.randn(1, 2, 6, 3)
    K, alpha = 3, 0.2
    expected = sum(alpha * (1 - alpha) ** i * torch.linalg.matrix_power(t, i) @ v for i in range(K + 1))
    assert torch.allclose(ops.ppr_diffusion(v, lambda h: t @ h, K, alpha), expected, atol=1e-6)
    assert ops.ppr_coefficients(2, 0.1) == pytest.approx([0.1, 0.09, 0.081])
    with pytest.raises(ValueError):
        ops.ppr_coefficients(2, 0.0)


@settings(max_examples=15, deadline=None)
@given(n=st.integers(2, 9), p=st.floats(0.05, 0.5), seed=st.integers(0, 10_000))
def test_dense_and_sparse_structures_give_the_same_scores_and_propagation(n, p, seed):
    adj = random_adj(1, n, p, seed)
    neighbors, mask = to_neighbors(adj, seed=seed)
    gen = torch.Generator().manual_seed(seed)
    q, k, h = (torch.randn(1, 2, n, 4, generator=gen) for _ in range(3))
    dense, sparse = ops.dense_structure(adj), ops.sparse_structure(neighbors, mask)
    t_dense = ops.masked_softmax(dense.scores(q, k), dense.mask[:, None])
    t_sparse = ops.masked_softmax(sparse.scores(q, k), sparse.mask[:, None])
    assert torch.allclose(dense.propagate(t_dense, h), sparse.propagate(t_sparse, h), atol=1e-5)


def test_structures_drop_self_loops_and_padding_nodes():
    adj = torch.ones(1, 3, 3, dtype=torch.bool)
    node_mask = torch.tensor([[True, True, False]])
    dense = ops.dense_structure(adj, node_mask)
    assert dense.mask[0].tolist() == [[False, True, False], [True, False, False], [False, False, False]]
    neighbors = torch.tensor([[[0, 1, 2], [0, 1, 2], [0, 1, 2]]])
    sparse = ops.sparse_structure(neighbors, node_mask=node_mask)
    assert torch.equal(sparse.mask, dense.mask)
    with pytest.raises(ValueError, match="non-negative"):
        ops.dense_structure(-torch.ones(1, 2, 2))
    with pytest.raises(ValueError, match="neighbour indices"):
        ops.sparse_structure(torch.full((1, 2, 1), 5))


@settings(max_examples=15, deadline=None)
@given(n=st.integers(1, 9), p=st.floats(0.05, 0.6), cap=st.integers(0, 3), seed=st.integers(0, 10_000))
def test_hop_distances_and_hop_neighborhood_match_reference_bfs(n, p, cap, seed):
    adj = random_adj(1, n, p, seed)
    ref = bfs_distances(adj[0], cap)
    assert torch.equal(ops.hop_distances(adj, cap)[0], ref)
    neighbors, mask = to_neighbors(adj, seed=seed)
    hop_nbrs, hop_mask, hop_dist = ops.hop_neighborhood(neighbors, mask, cap)
    from_list = torch.full((n, n), cap + 1, dtype=torch.long)
    for i in range(n):
        real = hop_mask[0, i]
        assert hop_nbrs[0, i, real].unique().numel() == int(real.sum())  # de-duplicated
        from_list[i, hop_nbrs[0, i, real]] = hop_dist[0, i, real]
    assert torch.equal(from_list, ref)


def test_edge_index_to_neighbors_symmetrises_dedups_and_caps_degree():
    edge_index = torch.tensor([[0, 0, 1, 2, 2, 3], [1, 1, 2, 2, 0, 0]])  # duplicate 0→1, self-loop 2→2
    neighbors, mask = ops.edge_index_to_neighbors(edge_index, num_nodes=5)
    got = {i: sorted(neighbors[i, mask[i]].tolist()) for i in range(5)}
    assert got == {0: [1, 2, 3], 1: [0, 2], 2: [0, 1], 3: [0], 4: []}
    capped, cmask = ops.edge_index_to_neighbors(edge_index, num_nodes=5, max_degree=2, seed=3)
    assert capped.shape == (5, 2) and int(cmask[0].sum()) == 2
    assert set(capped[0, cmask[0]].tolist()) <= {1, 2, 3}


def test_masked_softmax_never_returns_denormal_weights():
    """Denormal floats make CPU kernels ~100x slower; tiny weights are cut to exactly zero instead."""
    s = torch.tensor([[0.0, -29.0, -31.0, -95.0]])
    t = ops.masked_softmax(s, torch.ones_like(s, dtype=torch.bool))
    assert t[0, 1] > 0 and t[0, 2] == 0 and t[0, 3] == 0
    assert torch.all((t == 0) | (t.abs() >= torch.finfo(t.dtype).tiny))
