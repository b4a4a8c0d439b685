import numpy as np
import pytest
import torch

from fusion import LEGOConfig
from vad.data.batch import FeatureBatch, collate, resample
from vad.features.store import VideoFeatures, VideoMeta
from vad.models.anomaly import AnomalyModel, smooth_over_time
from vad.models.config import ModelConfig
from vad.models.heads import temporal_neighbors

D, F, P, K = 32, 2, 4, 5

VARIANTS = [
    ModelConfig(feature_dim=D, hidden=16, num_prompts=K),
    ModelConfig(feature_dim=D, hidden=16, num_prompts=K, fusion="concat"),
    ModelConfig(feature_dim=D, hidden=16, num_prompts=K, attention="plain"),
    ModelConfig(feature_dim=D, hidden=16, num_prompts=K, attention="hop", qformer=True),
    ModelConfig(feature_dim=D, hidden=16, num_prompts=K, attention="hop", readout="both", context="none"),
    ModelConfig(arch="mil_mlp", feature_dim=D, num_prompts=K),
    ModelConfig(arch="mtn_concat", feature_dim=D, hidden=16, num_prompts=K),
]


def make_batch(lengths, seed=0):
    g = torch.Generator().manual_seed(seed)
    n = max(lengths)
    mask = torch.zeros(len(lengths), n, dtype=torch.bool)
    for i, length in enumerate(lengths):
        mask[i, :length] = True
    return FeatureBatch(torch.randn(len(lengths), n, D, generator=g), mask,
                        torch.randn(len(lengths), n, F, D, generator=g),
                        torch.randn(len(lengths), n, P, D, generator=g), torch.randn(K, D, generator=g))


@pytest.mark.parametrize("config", VARIANTS, ids=lambda c: f"{c.arch}-{c.fusion}-{c.attention}-q{int(c.qformer)}")
def test_scores_in_unit_interval_and_gradients_flow(config):
    torch.manual_seed(0)
    model = AnomalyModel(config)
    batch = make_batch([12, 7])
    out = model(batch)
    assert out.scores.shape == (2, 12)
    assert ((out.scores >= 0) & (out.scores <= 1)).all()
    out.scores[batch.node_mask].sum().backward()
    grads = [p.grad for p in model.parameters() if p.requires_grad]
    assert all(g is not None for g in grads) and any(g.abs().sum() > 0 for g in grads)


@pytest.mark.parametrize("config", VARIANTS[:5], ids=lambda c: f"{c.fusion}-{c.attention}-q{int(c.qformer)}")
def test_padding_does_not_change_real_snippets(config):
    """A video scored alone equals the same video scored in a batch beside a longer one."""
    torch.manual_seed(0)
    model = AnomalyModel(config).eval()
    batch = make_batch([12, 7])
    alone = FeatureBatch(batch.clip[1:, :7], batch.node_mask[1:, :7], batch.frame[1:, :7], batch.patch[1:, :7],
                         batch.text)
    with torch.no_grad():
        together = model(batch).scores[1, :7]
        single = model(alone).scores[0]
    assert torch.allclose(together, single, atol=1e-5)


def test_any_length_including_windowed_long_video():
    torch.manual_seed(0)
    config = ModelConfig(feature_dim=D, hidden=16, num_prompts=K, lego=LEGOConfig(window_size=32, window_overlap=8))
    model = AnomalyModel(config).eval()
    with torch.no_grad():
        for n in (1, 5, 100):
            assert model(make_batch([n])).scores.shape == (1, n)


def test_fusion_weights_exposed_only_with_lego():
    lego = AnomalyModel(VARIANTS[0])
    weights = lego.fusion_weights()
    assert set(weights) == {"clip*frame", "clip*patch", "clip*text", "frame*patch", "frame*text", "patch*text"}
    assert all(w.shape == (3, 3) for w in weights.values())
    assert AnomalyModel(VARIANTS[1]).fusion_weights() is None


def test_ensemble_scores_are_the_members_mean_and_each_member_learns():
    """``members=3``: three differently initialised heads; the score is their mean logit; training loss reaches
    every member; the fusion weights shown are the members' mean; an old config without the field has one."""
    torch.manual_seed(0)
    model = AnomalyModel(ModelConfig(feature_dim=D, hidden=16, num_prompts=K, members=3)).eval()
    heads = [model.head, *model.more_members]
    assert len(heads) == 3 and not torch.equal(heads[0].node_proj.weight, heads[1].node_proj.weight)
    batch = make_batch([12, 7])
    out = model(batch)
    members = out.extras["member_logits"]  # (3, B, N)
    assert members.shape == (3, 2, 12)
    assert torch.allclose(out.logits, members.mean(0)) and not torch.allclose(members[0], members[1])
    assert out.extras["member_degrees"].shape == (3, 2, 12)  # each member's graph, for the degree regulariser
    prepared = model.prepare(batch)  # members run together share graph builds; alone, each gives the same logits
    for i, head in enumerate(heads):
        alone = smooth_over_time(head(prepared)[0], batch.node_mask, model.config.smoothing)
        assert torch.equal(alone, members[i].detach())
    members[:, batch.node_mask].sigmoid().sum().backward()
    assert all(h.node_proj.weight.grad is not None and h.node_proj.weight.grad.abs().sum() > 0 for h in heads)
    mean_a = torch.stack([h.lego.fusion.fusion_weights().weights[0] for h in heads]).mean(0)
    assert torch.allclose(next(iter(model.fusion_weights().values())), mean_a)
    saved = ModelConfig(feature_dim=D, hidden=16).to_dict()
    del saved["members"]
    assert ModelConfig.from_dict(saved).members == 1
    assert ModelConfig(arch="oneclass", members=2).members == 1  # nothing trained: one head
    with pytest.raises(ValueError, match="members"):
        ModelConfig(members=0)


def test_temporal_neighbors_respect_ends_and_padding():
    mask = torch.tensor([[True, True, True, False]])
    idx, ok = temporal_neighbors(mask, 1)
    assert idx.shape == (1, 4, 2)
    assert ok[0].tolist() == [[False, True], [True, True], [True, False], [False, False]]


def test_resample_average_pools_and_repeats():
    x = np.arange(8, dtype=np.float32)[:, None]
    assert resample(x, 4)[:, 0].tolist() == [0.5, 2.5, 4.5, 6.5]
    assert resample(x[:2], 4).shape == (4, 1)


def test_collate_pads_and_masks():
    vids = [VideoFeatures(np.ones((n, D)), VideoMeta(name=f"v{n}"), frame=np.ones((n, F, D)),
                          patch=np.ones((n, P, D))) for n in (3, 5)]
    batch = collate(vids, ("clip", "frame", "patch"), np.ones((K, D)))
    assert batch.clip.shape == (2, 5, D) and batch.frame.shape == (2, 5, F, D)
    assert batch.node_mask.sum(1).tolist() == [3, 5]
    assert batch.clip[0, 3:].abs().sum() == 0


def test_collate_pad_short_pools_long_and_pads_short():
    vids = [VideoFeatures(np.arange(n * D, dtype=np.float32).reshape(n, D), VideoMeta(name=f"v{n}"))
            for n in (3, 10)]
    batch = collate(vids, ("clip",), None, length=5, pad_short=True)
    assert batch.clip.shape == (2, 5, D)
    assert batch.node_mask.sum(1).tolist() == [3, 5]  # short video kept as is, never duplicated
    assert torch.equal(batch.clip[0, :3], torch.from_numpy(vids[0].clip))
