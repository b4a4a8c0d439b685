"""HopDiffusedAttention / HopAwareAttention: locality, padding, batch independence, degenerate cases,
dense == sparse."""
from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from graph4mm import (
    HopAwareAttention,
    HopAwareAttentionConfig,
    HopDiffusedAttention,
    HopDiffusedAttentionConfig,
    ops,
)
from tests.graph4mm.graph4mm_helpers import bfs_distances, random_adj, to_neighbors

D, HEADS = 8, 2


def diffused(K: int = 2, alpha: float = 0.1, seed: int = 0) -> HopDiffusedAttention:
    torch.manual_seed(seed)
    return HopDiffusedAttention(HopDiffusedAttentionConfig(dim=D, heads=HEADS, K=K, alpha=alpha)).eval()


def aware(max_hops: int = 2, seed: int = 0) -> HopAwareAttention:
    torch.manual_seed(seed)
    return HopAwareAttention(HopAwareAttentionConfig(dim=D, heads=HEADS, max_hops=max_hops)).eval()


def features(b: int, n: int, seed: int) -> torch.Tensor:
    return torch.randn(b, n, D, generator=torch.Generator().manual_seed(seed))


def run(layer, x, adj, sparse: bool, **kw):
    if not sparse:
        return layer(x, adj=adj, **kw)
    neighbors, mask = to_neighbors(adj, seed=1)
    return layer(x, neighbors=neighbors, neighbor_mask=mask, **kw)


def chain_adj(n: int) -> torch.Tensor:
    """Undirected path 0 - 1 - ... - n-1, (1, N, N)."""
    adj = torch.zeros(1, n, n, dtype=torch.bool)
    idx = torch.arange(n - 1)
    adj[0, idx, idx + 1] = adj[0, idx + 1, idx] = True
    return adj


def test_repr_and_config_defaults():
    layer = HopDiffusedAttention(HopDiffusedAttentionConfig())
    assert layer.extra_repr() == "dim=512, heads=8, K=2, alpha=0.1"
    assert repr(layer).startswith("HopDiffusedAttention(\n  dim=512, heads=8, K=2, alpha=0.1\n")
    aware_repr = HopAwareAttention(HopAwareAttentionConfig(dim=16, heads=2)).extra_repr()
    assert aware_repr == "dim=16, heads=2, max_hops=2"
    with pytest.raises(ValueError, match="divisible"):
        HopDiffusedAttention(HopDiffusedAttentionConfig(dim=8, heads=3))
    with pytest.raises(ValueError, match="alpha"):
        HopDiffusedAttention(HopDiffusedAttentionConfig(dim=8, heads=2, alpha=0.0))


def test_exactly_one_structure_is_required():
    x = features(1, 4, 0)
    adj = chain_adj(4)
    neighbors, _ = to_neighbors(adj)
    with pytest.raises(ValueError, match="exactly one"):
        diffused()(x)
    with pytest.raises(ValueError, match="exactly one"):
        diffused()(x, adj=adj, neighbors=neighbors)


def assert_chain_locality(layer, n: int, reach: int, sparse: bool) -> None:
    """On the path 0 - 1 - ... - n-1, perturbing node w changes node 0's output iff w <= reach."""
    adj, x = chain_adj(n), features(1, n, 0)
    base = run(layer, x, adj, sparse)[0, 0]
    for w in range(1, n):
        x2 = x.clone()
        x2[0, w] += 3.0
        delta = (run(layer, x2, adj, sparse)[0, 0] - base).abs().max()
        if w <= reach:
            assert delta > 1e-4, f"node {w} within {reach} hops did not influence node 0"
        else:
            assert delta == 0, f"node {w} beyond {reach} hops influenced node 0"


@pytest.mark.parametrize("sparse", [False, True])
@pytest.mark.parametrize("K", [1, 2, 3])
def test_hop_diffused_output_depends_only_on_nodes_within_K_hops(K, sparse):
    assert_chain_locality(diffused(K=K), n=8, reach=K, sparse=sparse)


@settings(max_examples=10, deadline=None)
@given(n=st.integers(3, 9), p=st.floats(0.1, 0.4), K=st.integers(0, 3), seed=st.integers(0, 10_000))
def test_hop_diffused_locality_on_random_graphs(n, p, K, seed):
    adj, x = random_adj(1, n, p, seed), features(1, n, seed)
    layer = diffused(K=K, seed=seed % 7)
    w = seed % n
    x2 = x.clone()
    x2[0, w] += 3.0
    changed = (layer(x2, adj=adj) - layer(x, adj=adj))[0].abs().amax(-1)
    # node u reads node w iff w is within K hops of u following edges u -> neighbour
    reach = bfs_distances(adj[0], K)[:, w] <= K
    assert torch.all(changed[~reach] == 0)
    assert torch.all(changed[reach] > 1e-6)


@pytest.mark.parametrize("sparse", [False, True])
def test_hop_aware_output_depends_only_on_nodes_within_max_hops(sparse):
    assert_chain_locality(aware(max_hops=2), n=7, reach=2, sparse=sparse)


@pytest.mark.parametrize("make", [diffused, aware], ids=["diffused", "aware"])
@pytest.mark.parametrize("sparse", [False, True])
def test_padding_never_influences_real_nodes(make, sparse):
    n_real, n = 5, 8
    layer = make()
    adj = random_adj(1, n, 0.5, 3)  # edges to and from padded nodes exist but must be ignored
    node_mask = torch.arange(n)[None] < n_real
    x = features(1, n, 0)
    out = run(layer, x, adj, sparse, node_mask=node_mask)
    x2 = x.clone()
    x2[0, n_real:] = 100 * torch.randn(n - n_real, D)
    out2 = run(layer, x2, adj, sparse, node_mask=node_mask)
    assert torch.equal(out[0, :n_real], out2[0, :n_real])
    unpadded = run(layer, x[:, :n_real], adj[:, :n_real, :n_real], sparse)
    assert torch.allclose(out[0, :n_real], unpadded[0], atol=1e-5)
    assert torch.equal(out2[0, n_real:], x2[0, n_real:])  # padded positions pass through


@pytest.mark.parametrize("make", [diffused, aware], ids=["diffused", "aware"])
@pytest.mark.parametrize("sparse", [False, True])
def test_batch_elements_never_influence_each_other(make, sparse):
    layer, n = make(), 6
    adj = random_adj(3, n, 0.4, 5)  # a different graph per sample
    x = features(3, n, 0)
    out = run(layer, x, adj, sparse)
    singles = torch.cat([run(layer, x[i:i + 1], adj[i:i + 1], sparse) for i in range(3)])
    assert torch.allclose(out, singles, atol=1e-5)
    x2 = x.clone()
    x2[1] = torch.randn(n, D)
    out2 = run(layer, x2, adj, sparse)
    assert torch.equal(out2[0], out[0]) and torch.equal(out2[2], out[2])


def _self_only_reference(layer: HopDiffusedAttention, x: torch.Tensor, weight: float) -> torch.Tensor:
    """LN2(h + FFN(h)), h = LN1(x + W_O(weight · W_V x)): the layer with 𝒜 = weight · I."""
    h = layer.norm1(x + layer.o_proj(weight * layer.v_proj(x)))
    return layer.norm2(h + layer.ffn(h))


def test_K0_degenerates_to_alpha_weighted_identity_and_ignores_structure():
    n, alpha = 6, 0.3
    layer, x = diffused(K=0, alpha=alpha), features(2, n, 0)
    expected = _self_only_reference(layer, x, alpha)
    empty, full = torch.zeros(2, n, n, dtype=torch.bool), torch.ones(2, n, n, dtype=torch.bool)
    for adj in (empty, full, random_adj(2, n, .4, 1)):
        assert torch.allclose(layer(x, adj=adj), expected, atol=1e-5)


def test_alpha_one_degenerates_to_identity_term():
    x, adj = features(1, 6, 0), random_adj(1, 6, 0.5, 2)
    full = diffused(K=3, alpha=1.0)
    expected = _self_only_reference(full, x, 1.0)
    assert torch.allclose(full(x, adj=adj), expected, atol=1e-5)
    near = diffused(K=3, alpha=1 - 1e-6)
    near.load_state_dict(full.state_dict())
    assert torch.allclose(near(x, adj=adj), expected, atol=1e-4)
    assert not torch.allclose(diffused(K=3, alpha=0.5)(x, adj=adj), expected, atol=1e-3)


def test_isolated_nodes_get_no_nan_and_only_their_own_value():
    layer, n = diffused(), 4
    x = features(1, n, 0).requires_grad_(True)
    adj = torch.zeros(1, n, n, dtype=torch.bool)
    adj[0, 0, 1] = True  # node 0 has one neighbour; 1, 2, 3 none
    out = layer(x, adj=adj)
    assert torch.isfinite(out).all()
    assert torch.allclose(out[0, 1:], _self_only_reference(layer, x, 0.1)[0, 1:], atol=1e-5)
    out.sum().backward()
    assert torch.isfinite(x.grad).all()


@settings(max_examples=12, deadline=None)
@given(n=st.integers(2, 9), p=st.floats(0.1, 0.6), K=st.integers(0, 3), seed=st.integers(0, 10_000),
       n_pad=st.integers(0, 2))
def test_dense_and_sparse_paths_agree(n, p, K, seed, n_pad):
    adj, x = random_adj(2, n, p, seed), features(2, n, seed)
    node_mask = torch.arange(n)[None].expand(2, n) < max(1, n - n_pad)
    for layer in (diffused(K=K, seed=seed % 5), aware(max_hops=K, seed=seed % 5)):
        assert torch.allclose(run(layer, x, adj, False, node_mask=node_mask),
                              run(layer, x, adj, True, node_mask=node_mask), atol=1e-5)


def test_float_weights_agree_between_dense_adj_and_neighbor_weights():
    n = 7
    adj = random_adj(1, n, 0.5, 4)
    weights = torch.rand(1, n, n, generator=torch.Generator().manual_seed(0)) * adj
    neighbors, mask = to_neighbors(adj)
    nw = weights.gather(2, neighbors)
    layer, x = diffused(), features(1, n, 0)
    dense = layer(x, adj=weights)
    sparse = layer(x, neighbors=neighbors, neighbor_mask=mask, neighbor_weights=nw)
    assert torch.allclose(dense, sparse, atol=1e-5)
    assert not torch.allclose(dense, layer(x, adj=adj), atol=1e-4)  # the weights do matter


@pytest.mark.parametrize("make", [diffused, aware], ids=["diffused", "aware"])
@pytest.mark.parametrize("sparse", [False, True])
def test_gradients_reach_all_parameters(make, sparse):
    layer = make().train()
    adj = random_adj(2, 6, 0.4, 0)
    run(layer, features(2, 6, 0), adj, sparse).pow(2).sum().backward()
    for name, p in layer.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name


def test_sparse_structure_ops_are_linear_in_slots_not_nodes_squared():
    """The sparse path never builds an (N, N) tensor: scores are (B, H, N, k)."""
    n, k = 2048, 4
    neighbors = torch.randint(0, n, (1, n, k), generator=torch.Generator().manual_seed(0))
    structure = ops.sparse_structure(neighbors)
    q = torch.randn(1, 1, n, 4)
    assert structure.scores(q, q).shape == (1, 1, n, k)
    layer = HopDiffusedAttention(HopDiffusedAttentionConfig(dim=8, heads=2, K=2))
    with torch.no_grad():
        assert layer(torch.randn(1, n, 8), neighbors=neighbors).shape == (1, n, 8)
