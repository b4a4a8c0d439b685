"""Tests for fusion/graphs.py: the clip, frame, patch and text level graphs over snippets."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from fusion.graphs import clip_graph, frame_graph, patch_graph, set_graph, text_affinity, text_graph
from fusion.ops import relationship_graph

COS = torch.nn.functional.cosine_similarity


def _sets(seed: int, b: int = 2, n: int = 5, s: int = 3, d: int = 4) -> torch.Tensor:
    return torch.randn(b, n, s, d, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


def _brute_force(x: torch.Tensor, aggregate: str) -> torch.Tensor:
    b, n = x.shape[:2]
    out = torch.zeros(b, n, n, dtype=x.dtype)
    for bi in range(b):
        for i in range(n):
            for j in range(n):
                c = COS(x[bi, i][:, None, :], x[bi, j][None, :, :], dim=-1)  # shape = [S, S]
                if aggregate == "mean":
                    out[bi, i, j] = c.mean()
                elif aggregate == "aligned":
                    out[bi, i, j] = c.diagonal().mean()
                else:
                    out[bi, i, j] = 0.5 * (c.amax(1).mean() + c.amax(0).mean())
    return out


@pytest.mark.parametrize("aggregate", ["mean", "aligned", "chamfer"])
def test_set_graph_matches_brute_force_definition(aggregate: str) -> None:
    x = _sets(0)
    torch.testing.assert_close(set_graph(x, aggregate=aggregate), _brute_force(x, aggregate))


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 10_000), aggregate=st.sampled_from(["mean", "aligned", "chamfer"]))
def test_set_graphs_are_symmetric_and_bounded(seed: int, aggregate: str) -> None:
    graph = set_graph(_sets(seed), aggregate=aggregate)
    torch.testing.assert_close(graph, graph.transpose(1, 2))
    assert graph.abs().max() <= 1 + 1e-9


def test_frame_and_patch_graphs_mask_padding_and_keep_real_block() -> None:
    x = _sets(1, b=1, n=6)
    mask = torch.tensor([[True, True, True, True, False, False]])
    for builder in (frame_graph, patch_graph):
        graph = builder(x, mask)
        assert graph[0, 4:].abs().sum() == 0 and graph[0, :, 4:].abs().sum() == 0
        torch.testing.assert_close(graph[0, :4, :4], builder(x[:, :4])[0])


def test_patch_graph_default_has_unit_diagonal() -> None:
    graph = patch_graph(_sets(2))
    torch.testing.assert_close(torch.diagonal(graph, dim1=1, dim2=2), torch.ones(2, 5, dtype=torch.float64))


def test_clip_graph_is_relationship_graph() -> None:
    x = torch.randn(2, 5, 4, generator=torch.Generator().manual_seed(3))
    torch.testing.assert_close(clip_graph(x, kind="rbf"), relationship_graph(x, kind="rbf"))


def test_text_affinity_rows_are_distributions_and_shared_prompts_broadcast() -> None:
    gen = torch.Generator().manual_seed(4)
    x, text = torch.randn(2, 6, 8, generator=gen), torch.randn(3, 8, generator=gen)
    profile = text_affinity(x, text, temperature=0.1)
    assert profile.shape == (2, 6, 3) and profile.min() >= 0
    torch.testing.assert_close(profile.sum(-1), torch.ones(2, 6))
    torch.testing.assert_close(text_graph(x, text), text_graph(x, text.expand(2, 3, 8)))


def test_text_graph_relates_snippets_closest_to_the_same_prompt() -> None:
    text = torch.eye(3, 8)  # three orthogonal prompts
    x = torch.stack([text[0] + 0.05, text[0] + 0.1, text[2] + 0.05])[None]  # snippets 0, 1 near prompt 0
    graph = text_graph(x, text, temperature=0.05)
    assert graph.shape == (1, 3, 3) and graph.min() >= 0 and graph.max() <= 1 + 1e-6
    assert graph[0, 0, 1] > 0.9 and graph[0, 0, 2] < 0.1
    torch.testing.assert_close(graph, graph.transpose(1, 2))


def test_text_graph_rejects_mismatched_prompt_width() -> None:
    with pytest.raises(ValueError, match="text must be"):
        text_graph(torch.randn(1, 4, 8), torch.randn(3, 5))


def test_prompt_cosine_is_the_cosine_and_text_affinity_its_softmax() -> None:
    from fusion.graphs import prompt_cosine

    gen = torch.Generator().manual_seed(3)
    x, text = torch.randn(2, 5, 8, generator=gen), torch.randn(4, 8, generator=gen)
    cos = prompt_cosine(x, text)
    expected = torch.nn.functional.cosine_similarity(x[:, :, None, :], text[None, None], dim=-1)
    assert cos.shape == (2, 5, 4) and torch.allclose(cos, expected, atol=1e-6)
    assert torch.allclose(text_affinity(x, text, temperature=0.5), torch.softmax(cos / 0.5, dim=-1))
