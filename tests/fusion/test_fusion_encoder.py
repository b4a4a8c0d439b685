"""Tests for fusion/encoder.py: LEGOGraphEncoder, dense and windowed paths."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from fusion.config import LEGOConfig
from fusion.encoder import LEGOGraphEncoder
from fusion.ops import topk_neighbors

D = 16
SMALL = LEGOConfig(in_dim=D, out_dim=8, top_k=3, window_size=24, window_overlap=8, window_batch=3)


def _levels(b: int, n: int, seed: int = 0, per_video_text: bool = False) -> tuple[dict, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(b, n, D, generator=gen)
    text = torch.randn(b, 4, D, generator=gen) if per_video_text else torch.randn(4, D, generator=gen)
    levels = {
        "clip": x,
        "frame": torch.randn(b, n, 3, D, generator=gen),
        "patch": torch.randn(b, n, 4, D, generator=gen),
        "text": text,
    }
    return levels, x


def _encoder(config: LEGOConfig = SMALL, seed: int = 0) -> LEGOGraphEncoder:
    torch.manual_seed(seed)
    encoder = LEGOGraphEncoder(config).eval()
    with torch.no_grad():  # away from the uniform init, so that pairs and hop orders differ
        encoder.fusion.weight.uniform_(-0.5, 1.0, generator=torch.Generator().manual_seed(seed))
    return encoder


def _with(encoder: LEGOGraphEncoder, **changes: object) -> LEGOGraphEncoder:
    """Same weights, different config."""
    other = LEGOGraphEncoder(dataclasses.replace(encoder.config, **changes)).eval()
    other.load_state_dict(encoder.state_dict())
    return other


def _slice(levels: dict, lo: int, hi: int, b: int | None = None) -> dict:
    rows = slice(None) if b is None else slice(b, b + 1)
    return {
        k: (v if k == "text" and v.dim() == 2 else v[rows, lo:hi] if k != "text" else v[rows])
        for k, v in levels.items()
    }


def test_shapes_for_a_batch_of_different_lengths() -> None:
    levels, x = _levels(3, 20)
    mask = torch.ones(3, 20, dtype=torch.bool)
    mask[1, 12:] = False
    mask[2, 5:] = False
    out = _encoder()(levels, x, mask)
    assert not out.windowed and out.fused.shape == (3, 20, 20)
    assert out.nodes.shape == (3, 20, 8) and out.degrees.shape == (3, 20)
    assert out.neighbors.shape == out.neighbor_mask.shape == out.neighbor_weights.shape == (3, 20, 3)
    assert out.neighbors.dtype == torch.long and out.neighbor_mask.dtype == torch.bool
    assert (out.nodes[~mask] == 0).all() and not out.neighbor_mask[~mask].any()
    lengths = mask.sum(-1)
    for b in range(3):
        real = out.neighbors[b][out.neighbor_mask[b]]
        assert (real < lengths[b]).all()
    self_edge = out.neighbors == torch.arange(20)[None, :, None]
    assert not (self_edge & out.neighbor_mask).any()


def test_neighbours_are_topk_of_the_fused_graph() -> None:
    levels, x = _levels(2, 15, seed=1)
    out = _encoder()(levels, x)
    neighbors, neighbor_mask, _weights = topk_neighbors(out.fused, 3)
    assert torch.equal(out.neighbors, neighbors) and torch.equal(out.neighbor_mask, neighbor_mask)
    torch.testing.assert_close(out.degrees, out.fused.sum(-1))


@pytest.mark.parametrize("windowed", [False, True])
def test_padded_nodes_do_not_change_real_outputs(windowed: bool) -> None:
    n_real, n_pad = (20, 30) if not windowed else (60, 80)
    encoder = _encoder(dataclasses.replace(SMALL, mode="windowed" if windowed else "dense"))
    levels, x = _levels(2, n_pad, seed=2, per_video_text=True)
    mask = torch.ones(2, n_pad, dtype=torch.bool)
    mask[0, n_real:] = False
    padded = encoder(levels, x, mask)
    alone = encoder(_slice(levels, 0, n_real, b=0), x[:1, :n_real])
    torch.testing.assert_close(padded.nodes[0, :n_real], alone.nodes[0], atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(padded.degrees[0, :n_real], alone.degrees[0], atol=1e-5, rtol=1e-5)
    assert torch.equal(padded.neighbor_mask[0, :n_real], alone.neighbor_mask[0])
    assert torch.equal(padded.neighbors[0, :n_real], alone.neighbors[0])


def test_windowed_equals_dense_on_short_videos() -> None:
    levels, x = _levels(2, 24, seed=3)  # N = window_size: a single window
    mask = torch.ones(2, 24, dtype=torch.bool)
    mask[1, 17:] = False
    dense = _encoder()(levels, x, mask)
    windowed = _with(_encoder(), mode="windowed")(levels, x, mask)
    assert windowed.windowed and windowed.fused is None and not dense.windowed
    torch.testing.assert_close(windowed.nodes, dense.nodes)
    torch.testing.assert_close(windowed.neighbor_weights, dense.neighbor_weights)
    torch.testing.assert_close(windowed.degrees, dense.degrees)
    assert torch.equal(windowed.neighbors, dense.neighbors)
    assert torch.equal(windowed.neighbor_mask, dense.neighbor_mask)


def test_windowed_node_outputs_come_from_their_most_central_window() -> None:
    levels, x = _levels(1, 56, seed=4)  # W = 24, stride 16: windows start at 0, 16, 32
    encoder = _encoder()
    out = encoder(levels, x)
    assert out.windowed
    for lo, nodes in ((0, range(20)), (16, range(20, 36)), (32, range(36, 56))):
        window = encoder.__class__(dataclasses.replace(SMALL, mode="dense")).eval()
        window.load_state_dict(encoder.state_dict())
        ref = window(_slice(levels, lo, lo + 24), x[:, lo : lo + 24])
        local = [i - lo for i in nodes]
        torch.testing.assert_close(out.nodes[0, list(nodes)], ref.nodes[0, local])
        assert torch.equal(out.neighbors[0, list(nodes)], ref.neighbors[0, local] + lo)


def test_windowed_mode_scales_to_long_videos() -> None:
    config = dataclasses.replace(SMALL, window_size=32, window_overlap=8, window_batch=16)
    levels, x = _levels(2, 800, seed=5)
    mask = torch.ones(2, 800, dtype=torch.bool)
    mask[1, 500:] = False
    out = _encoder(config)(levels, x, mask)
    assert out.windowed and out.fused is None
    assert out.nodes.shape == (2, 800, 8) and torch.isfinite(out.nodes).all()
    assert torch.isfinite(out.neighbor_weights).all() and out.neighbor_mask[0].all()
    assert out.neighbors[0].max() > 750 and (out.neighbors[1][out.neighbor_mask[1]] < 500).all()
    # neighbours stay inside a window
    assert ((out.neighbors[0] - torch.arange(800)[:, None]).abs() < 32).all()


@pytest.mark.parametrize("mode", ["dense", "windowed"])
def test_gradients_reach_fusion_weights_and_projection(mode: str) -> None:
    encoder = _encoder(dataclasses.replace(SMALL, mode=mode)).train()
    levels, x = _levels(2, 40, seed=6)
    torch.manual_seed(0)
    out = encoder(levels, x)
    assert isinstance(out.pair, int)
    target = torch.randn(out.nodes.shape, generator=torch.Generator().manual_seed(7))
    (out.nodes * target).sum().backward()
    assert encoder.fusion.weight.grad[out.pair].abs().sum() > 0
    assert encoder.proj.weight.grad.abs().sum() > 0 and encoder.bias.grad.abs().sum() > 0


def test_single_level_and_level_subsets() -> None:
    levels, x = _levels(2, 12, seed=8)
    single = _encoder(dataclasses.replace(SMALL, levels=("clip",)))
    out = single({"clip": levels["clip"]}, x)
    assert out.nodes.shape == (2, 12, 8) and torch.isfinite(out.nodes).all()
    pair = _encoder(dataclasses.replace(SMALL, levels=("frame", "text")))
    # no clip level: text graph compares x
    with_x = pair({"frame": levels["frame"], "text": levels["text"]}, x)
    other = pair({"frame": levels["frame"], "text": levels["text"]}, x + 1.0)
    assert with_x.fused.shape == (2, 12, 12) and not torch.allclose(with_x.fused, other.fused)
    full = _encoder()
    sub = full({"clip": levels["clip"], "patch": levels["patch"]}, x)
    assert torch.isfinite(sub.nodes).all()


def test_rbf_kernel_and_other_normalisations_run() -> None:
    levels, x = _levels(1, 10, seed=9)
    for changes in (
        {"kernel": "rbf"},
        {"normalize": "row"},
        {"frame_aggregate": "chamfer", "scale_by_size": False},
    ):
        out = _encoder(dataclasses.replace(SMALL, **changes))(levels, x)
        assert torch.isfinite(out.nodes).all()


def test_bad_inputs_are_clear_errors() -> None:
    levels, x = _levels(1, 10)
    encoder = _encoder(dataclasses.replace(SMALL, levels=("clip", "frame")))
    with pytest.raises(ValueError, match="subset"):
        encoder({"patch": levels["patch"], "clip": levels["clip"]}, x)
    with pytest.raises(ValueError, match="level 'frame'"):
        encoder({"clip": levels["clip"], "frame": levels["frame"][:, :5]}, x)
    with pytest.raises(ValueError, match="x must be"):
        encoder({"clip": levels["clip"]}, torch.randn(1, 10, D + 1))
    with pytest.raises(ValueError, match="window_overlap"):
        LEGOConfig(window_size=8, window_overlap=8)


def test_repr_names_the_configuration() -> None:
    text = repr(_encoder())
    assert "top_k=3" in text and "window=24/8" in text and "LEGOFusion(pairs=[clip*frame" in text


def test_relation_readout_does_not_need_propagation():
    """``propagate=False`` skips G X W (zero nodes); G, its neighbours and the relation read-out are unchanged."""
    import torch

    from fusion import LEGOConfig, LEGOGraphEncoder

    torch.manual_seed(0)
    x = torch.randn(2, 20, 16)
    levels = {"clip": x, "motion": torch.randn(2, 20, 5)}
    full = LEGOGraphEncoder(LEGOConfig(levels=("clip", "motion"), in_dim=16, out_dim=8)).eval()
    lean = LEGOGraphEncoder(LEGOConfig(levels=("clip", "motion"), in_dim=16, out_dim=8, propagate=False)).eval()
    lean.load_state_dict(full.state_dict())
    a, b = full(levels, x), lean(levels, x)
    assert torch.equal(a.relations, b.relations) and torch.equal(a.neighbors, b.neighbors)
    assert b.nodes.abs().sum() == 0 and a.nodes.abs().sum() > 0


FIELDS = ("nodes", "neighbors", "neighbor_mask", "neighbor_weights", "degrees", "relations")


@pytest.mark.parametrize("mode, levels_kept", [("dense", None), ("windowed", None), ("dense", ("frame", "text"))])
def test_members_share_graph_builds_and_get_their_own_outputs(mode: str, levels_kept: tuple | None) -> None:
    """encode_members == each encoder alone, field for field, to the bit; without a clip level the text graph is
    built from each x (nothing shared, same results)."""
    from fusion.encoder import encode_members

    levels, _ = _levels(2, 60, seed=5)
    if levels_kept:
        levels = {k: v for k, v in levels.items() if k in levels_kept}
    mask = torch.ones(2, 60, dtype=torch.bool)
    mask[1, 41:] = False
    encoders = [_with(_encoder(seed=s), mode=mode) for s in range(3)]
    xs = [torch.randn(2, 60, D, generator=torch.Generator().manual_seed(10 + s)) for s in range(3)]
    together = encode_members(encoders, levels, xs, mask)
    assert len(together) == 3 and all(out.windowed == (mode == "windowed") for out in together)
    for encoder, x, joint in zip(encoders, xs, together):
        alone = encoder(levels, x, mask)
        for name in FIELDS:
            assert torch.equal(getattr(alone, name), getattr(joint, name)), name
    assert not torch.equal(together[0].degrees, together[1].degrees)  # each member fused with its own A


def test_members_must_share_one_config() -> None:
    from fusion.encoder import encode_members

    levels, x = _levels(1, 10)
    with pytest.raises(ValueError, match="one config"):
        encode_members([_encoder(), _with(_encoder(), top_k=2)], levels, [x, x])
