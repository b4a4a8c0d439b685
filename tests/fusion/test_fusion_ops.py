"""Tests for fusion/ops.py: relationship graphs, normalisation, powers, neighbour lists."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from fusion.ops import (
    graph_powers,
    normalize_graph,
    relationship_graph,
    row_l1_normalize,
    scale_powers_by_size,
    topk_neighbors,
)

FAST = settings(max_examples=25, deadline=None)


def _features(seed: int, b: int = 2, n: int = 7, d: int = 5) -> torch.Tensor:
    return torch.randn(b, n, d, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


@FAST
@given(seed=st.integers(0, 10_000), n=st.integers(1, 9), kind=st.sampled_from(["cosine", "rbf"]))
def test_symmetric_kernels_give_symmetric_graphs_with_unit_diagonal(seed: int, n: int, kind: str) -> None:
    graph = relationship_graph(_features(seed, n=n), kind=kind)
    assert graph.shape == (2, n, n)
    torch.testing.assert_close(graph, graph.transpose(1, 2))
    torch.testing.assert_close(torch.diagonal(graph, dim1=1, dim2=2), torch.ones(2, n, dtype=torch.float64))
    assert graph.abs().max() <= 1 + 1e-9


def test_cosine_and_rbf_values_match_definitions() -> None:
    x = _features(0, b=1, n=4)
    cos = relationship_graph(x)
    assert cos[0, 1, 2].item() == pytest.approx(
        torch.nn.functional.cosine_similarity(x[0, 1], x[0, 2], dim=0).item()
    )
    rbf = relationship_graph(x, kind="rbf", gamma=0.3)
    assert rbf[0, 0, 3].item() == pytest.approx(torch.exp(-0.3 * (x[0, 0] - x[0, 3]).pow(2).sum()).item())


def test_padded_nodes_have_zero_rows_and_columns() -> None:
    mask = torch.tensor([[True, True, True, False, False]])
    for kind in ("cosine", "rbf"):
        graph = relationship_graph(_features(1, b=1, n=5), kind=kind, node_mask=mask)
        assert graph[0, 3:].abs().sum() == 0 and graph[0, :, 3:].abs().sum() == 0
        torch.testing.assert_close(
            graph[0, :3, :3], relationship_graph(_features(1, b=1, n=5)[:, :3], kind=kind)[0]
        )


def test_zeroth_power_is_identity_on_real_nodes() -> None:
    mask = torch.tensor([[True, True, True, True], [True, True, False, False]])
    powers = graph_powers(relationship_graph(_features(2, n=4)), P=3, node_mask=mask)
    assert powers.shape == (2, 4, 4, 4)
    torch.testing.assert_close(powers[0, 0], torch.eye(4, dtype=torch.float64))
    torch.testing.assert_close(
        powers[1, 0], torch.diag(torch.tensor([1.0, 1.0, 0.0, 0.0], dtype=torch.float64))
    )
    unmasked = graph_powers(relationship_graph(_features(2, n=4)), P=0)
    torch.testing.assert_close(unmasked[:, 0], torch.eye(4, dtype=torch.float64).expand(2, 4, 4))


@pytest.mark.parametrize("mode", ["sym", "row", "softmax", "none"])
def test_powers_equal_matrix_power_of_normalised_graph(mode: str) -> None:
    graph = relationship_graph(_features(3, n=6))
    powers = graph_powers(graph, P=4, normalize=mode)
    base = normalize_graph(graph, mode)
    for p in range(5):
        torch.testing.assert_close(powers[:, p], torch.linalg.matrix_power(base, p))


@FAST
@given(seed=st.integers(0, 10_000), n=st.integers(2, 10), kind=st.sampled_from(["cosine", "rbf"]))
def test_sym_normalised_powers_stay_bounded(seed: int, n: int, kind: str) -> None:
    powers = graph_powers(relationship_graph(_features(seed, n=n), kind=kind), P=6, normalize="sym")
    assert powers.min() >= 0 and powers.max() <= 1 + 1e-9
    assert torch.linalg.matrix_norm(powers, ord=2).max() <= 1 + 1e-9  # spectral norm <= 1 for every power
    torch.testing.assert_close(powers, powers.transpose(-1, -2))


@FAST
@given(seed=st.integers(0, 10_000), n=st.integers(2, 10), mode=st.sampled_from(["row", "softmax"]))
def test_row_normalised_powers_are_row_stochastic(seed: int, n: int, mode: str) -> None:
    powers = graph_powers(relationship_graph(_features(seed, n=n)), P=5, normalize=mode)
    assert powers.min() >= 0
    torch.testing.assert_close(powers.sum(-1), torch.ones(2, 6, n, dtype=torch.float64))


def test_normalisation_handles_padding_without_nan() -> None:
    mask = torch.tensor([[True, True, False], [False, False, False]])
    graph = relationship_graph(_features(4, n=3), node_mask=mask)
    for mode in ("sym", "row", "softmax", "none"):
        out = graph_powers(graph, P=2, normalize=mode, node_mask=mask)
        assert torch.isfinite(out).all()
        assert out[0, :, 2].abs().sum() == 0 and out[1].abs().sum() == 0


def test_scale_by_size_multiplies_powers_above_zero_by_real_count() -> None:
    mask = torch.tensor([[True, True, True], [True, False, False]])
    powers = graph_powers(relationship_graph(_features(5, n=3), node_mask=mask), P=2, node_mask=mask)
    scaled = scale_powers_by_size(powers, mask)
    torch.testing.assert_close(scaled[:, 0], powers[:, 0])
    torch.testing.assert_close(scaled[0, 1:], 3 * powers[0, 1:])
    torch.testing.assert_close(scaled[1, 1:], 1 * powers[1, 1:])


def test_row_l1_normalize_gives_unit_absolute_row_sums() -> None:
    graph = torch.randn(2, 5, 5, dtype=torch.float64, generator=torch.Generator().manual_seed(6))
    graph[1, 4] = 0.0
    out = row_l1_normalize(graph)
    torch.testing.assert_close(out[0].abs().sum(-1), torch.ones(5, dtype=torch.float64))
    assert out[1, 4].abs().sum() == 0
    assert torch.equal(torch.sign(out), torch.sign(graph))


def test_topk_neighbors_match_sorting_and_exclude_self_and_padding() -> None:
    graph = torch.rand(1, 6, 6, generator=torch.Generator().manual_seed(7))
    graph = graph + graph.transpose(1, 2) + 10 * torch.eye(6)  # self is the strongest: must still be excluded
    mask = torch.tensor([[True, True, True, True, True, False]])
    neighbors, neighbor_mask, weights = topk_neighbors(graph, k=3, node_mask=mask)
    for i in range(5):
        candidates = [j for j in range(5) if j != i]
        expected = sorted(candidates, key=lambda j: -graph[0, i, j].item())[:3]
        assert neighbors[0, i].tolist() == expected
        torch.testing.assert_close(weights[0, i], graph[0, i, expected])
    assert neighbor_mask[0, :5].all() and not neighbor_mask[0, 5].any()


def test_topk_pads_when_fewer_neighbours_than_k() -> None:
    graph = torch.rand(2, 3, 3, generator=torch.Generator().manual_seed(8))
    mask = torch.tensor([[True, True, True], [True, True, False]])
    neighbors, neighbor_mask, weights = topk_neighbors(graph, k=5, node_mask=mask)
    assert neighbors.shape == (2, 3, 5)
    assert neighbor_mask[0].sum(-1).tolist() == [2, 2, 2]
    assert neighbor_mask[1].sum(-1).tolist() == [1, 1, 0]
    assert (weights[~neighbor_mask] == 0).all() and (neighbors[~neighbor_mask] == 0).all()
    single = topk_neighbors(torch.ones(1, 1, 1), k=2)
    assert single[0].shape == (1, 1, 2) and not single[1].any()
