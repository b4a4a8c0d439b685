"""Tests for fusion/lego.py: the pairwise fusion operator and LEGOFusion's pair policy."""

from __future__ import annotations

import pytest
import torch

from fusion.config import LEGOConfig
from fusion.lego import LEGOFusion, fuse_pair, level_pairs
from fusion.ops import graph_powers, relationship_graph


def _powers(levels: tuple[str, ...], hops: int = 2, n: int = 5, seed: int = 0) -> dict[str, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    return {
        name: graph_powers(relationship_graph(torch.randn(2, n, 4, generator=gen)), hops) for name in levels
    }


def test_fuse_pair_matches_double_sum_of_hadamard_products() -> None:
    powers = _powers(("clip", "frame"), hops=3)
    weight = torch.randn(3, 2, generator=torch.Generator().manual_seed(1))  # P = 2, Q = 1
    expected = sum(
        weight[p, q] * powers["clip"][:, p] * powers["frame"][:, q] for p in range(3) for q in range(2)
    )
    torch.testing.assert_close(fuse_pair(powers["clip"], powers["frame"], weight), expected)


def test_level_pairs_are_unordered_distinct_pairs_or_self_pair() -> None:
    assert level_pairs(("clip", "frame", "text")) == (("clip", "frame"), ("clip", "text"), ("frame", "text"))
    assert level_pairs(("clip",)) == (("clip", "clip"),)


def test_eval_uses_mean_over_present_pairs() -> None:
    fusion = LEGOFusion(LEGOConfig(levels=("clip", "frame", "patch"))).eval()
    with torch.no_grad():
        fusion.weight.normal_(generator=torch.Generator().manual_seed(2))
    powers = _powers(("clip", "frame", "patch"))
    expected = (
        sum(fuse_pair(powers[a], powers[b], fusion.weight[i]) for i, (a, b) in enumerate(fusion.pairs)) / 3
    )
    torch.testing.assert_close(fusion(powers), expected)
    two = {name: powers[name] for name in ("clip", "patch")}
    torch.testing.assert_close(fusion(two), fuse_pair(powers["clip"], powers["patch"], fusion.weight[1]))


def test_single_level_fuses_powers_of_one_graph() -> None:
    fusion = LEGOFusion(LEGOConfig(levels=("clip",), P=2, Q=1)).train()
    powers = _powers(("clip",))
    fused = fusion(powers)
    assert fusion.weight.shape == (1, 3, 2)
    torch.testing.assert_close(fused, fuse_pair(powers["clip"], powers["clip"], fusion.weight[0]))


def test_training_samples_one_pair_reproducibly_and_eval_is_deterministic() -> None:
    fusion = LEGOFusion(LEGOConfig(levels=("clip", "frame", "patch", "text")))
    present = ["clip", "frame", "patch", "text"]
    torch.manual_seed(0)
    draws = [fusion.draw_pair(present) for _ in range(40)]
    torch.manual_seed(0)
    assert draws == [fusion.draw_pair(present) for _ in range(40)]
    assert set(draws) == set(range(6))
    assert {fusion.draw_pair(["clip", "text"]) for _ in range(10)} == {2}  # only clip*text is present
    fusion.eval()
    assert fusion.draw_pair(present) is None
    no_sampling = LEGOFusion(LEGOConfig(levels=("clip", "frame"), train_pair_sampling=False)).train()
    assert no_sampling.draw_pair(["clip", "frame"]) is None


def test_training_forward_uses_the_drawn_pair() -> None:
    fusion = LEGOFusion(LEGOConfig(levels=("clip", "frame", "patch")))
    with torch.no_grad():
        fusion.weight.normal_(generator=torch.Generator().manual_seed(3))
    powers = _powers(("clip", "frame", "patch"))
    torch.manual_seed(5)
    pair = fusion.draw_pair(powers)
    torch.manual_seed(5)
    fused = fusion(powers)
    a, b = fusion.pairs[pair]
    torch.testing.assert_close(fused, fuse_pair(powers[a], powers[b], fusion.weight[pair]))


def test_gradients_reach_fusion_weights() -> None:
    fusion = LEGOFusion(LEGOConfig(levels=("clip", "frame", "text"))).eval()
    fused = fusion(_powers(("clip", "frame", "text")))
    (fused * torch.randn(fused.shape, generator=torch.Generator().manual_seed(4))).sum().backward()
    assert fusion.weight.grad is not None and (fusion.weight.grad.abs().sum(dim=(1, 2)) > 0).all()


def test_fusion_weights_expose_named_matrices() -> None:
    fusion = LEGOFusion(LEGOConfig(levels=("clip", "frame", "text"), P=2, Q=3))
    weights = fusion.fusion_weights()
    assert weights.names == ("clip*frame", "clip*text", "frame*text")
    assert weights.weights.shape == (3, 3, 4) and not weights.weights.requires_grad
    assert list(weights.as_dict()) == list(weights.names)
    assert weights.as_dict()["clip*text"][0][0] == pytest.approx(1 / 12)
    assert "clip*frame" in repr(fusion) and "P=2, Q=3" in repr(fusion)


def test_missing_pair_is_a_clear_error() -> None:
    fusion = LEGOFusion(LEGOConfig(levels=("clip", "frame")))
    with pytest.raises(ValueError, match="no fusion pair"):
        fusion(_powers(("clip",)))
