"""One-class mode: bounded memory, k-NN distances, graph terms, fit on planted normal footage, checkpoints, FAR."""
import json

import numpy as np
import pytest
import torch

from vad.data.dataset import Dataset, VideoRecord
from vad.engine.calibration import CalibrationConfig
from vad.engine.fit_normal import FitNormalConfig, NormalFitter, fit_normal, with_graph_terms
from vad.engine.inference import score_records
from vad.engine.metrics import evaluate
from vad.engine.train import TrainConfig, train_model
from vad.errors import VadError
from vad.features.store import VideoFeatures, VideoMeta
from vad.models.checkpoint import load_checkpoint
from vad.models.config import MemoryConfig, ModelConfig
from vad.models.graph_terms import diffuse, snippet_graph, window_starts
from vad.models.memory import Reservoir, greedy_coreset, knn_distance, reduce_memory

D, S, M = 16, 4, 6
SMALL = FitNormalConfig(memory=MemoryConfig(size=256, pool=1024), device="cpu")


def planted_normal_dataset(seed=0, sizes=(("train", 16, 0), ("val", 12, 0.5), ("test", 16, 0.5)), length=(20, 40)):
    """Normal snippets move on a 3-d manifold of each scene; a planted event leaves it along a hidden direction.

    ``sizes``: (split, videos, share of abnormal videos). Returns the dataset and the frame labels.
    """
    rng = np.random.default_rng(seed)
    basis = rng.normal(size=(3, D)) / np.sqrt(D)
    away = rng.normal(size=D)
    away -= basis.T @ np.linalg.lstsq(basis.T, away, rcond=None)[0]
    away /= np.linalg.norm(away)
    motion_basis, motion_away = rng.normal(size=(2, M)), rng.normal(size=M)
    records, gt = {}, {}
    for split, count, share in sizes:
        for i in range(count):
            label = int(i < round(count * share))
            n = int(rng.integers(*length))
            z = np.cumsum(rng.normal(scale=0.3, size=(n, 3)), 0)  # a slow walk on the manifold
            clip = rng.normal(size=D) + z @ basis * 3 + 0.02 * rng.normal(size=(n, D))
            motion = np.abs(z[:, :2] @ motion_basis) * 0.2 + 0.02 * rng.normal(size=(n, M))
            frames = np.zeros(n * S, np.uint8)
            if label:
                start = int(rng.integers(2, n - 6))
                stop = start + int(rng.integers(3, 6))
                clip[start:stop] += 1.0 * away
                motion[start:stop] += 0.5 * motion_away
                frames[start * S:stop * S] = 1
            frame = clip[:, None] + 0.01 * rng.normal(size=(n, 2, D))
            patch = clip[:, None] + 0.01 * rng.normal(size=(n, 4, D))
            name = f"{split}_{i:02d}"
            meta = VideoMeta(name=name, snippet_len=S, num_frames=n * S, fps=10.0, backbone="planted")
            feats = VideoFeatures(clip, meta, frame=frame, patch=patch, motion=motion)
            records[name] = VideoRecord(feats, label, "Planted" if label else "Normal", split)
            gt[name] = frames
    return Dataset(records, None, []), gt


def _test_report(model, ds, gt, threshold=0.5):
    test = ds.split("test")
    scores = score_records(model, test, None, ds.levels())
    return evaluate({n: s.frames for n, s in scores.items()}, {r.name: gt[r.name] for r in test},
                    threshold=threshold, fps=10.0)


def test_reservoir_is_bounded_and_uniform():
    pool = Reservoir(500, 1, seed=0)
    for chunk in torch.arange(20000.0).split(300):
        pool.add(chunk[:, None])
    kept = pool.sample()[:, 0]
    assert pool.seen == 20000 and kept.shape == (500,) and kept.unique().numel() == 500
    assert abs(float(kept.mean()) - 10000) < 1200  # a uniform sample's mean (std of the mean ~ 260)
    assert abs(float((kept < 10000).float().mean()) - 0.5) < 0.1  # early and late rows alike


def test_knn_distance_matches_brute_force():
    g = torch.Generator().manual_seed(0)
    memory, queries = torch.randn(300, 8, generator=g), torch.randn(50, 8, generator=g)
    want = torch.cdist(queries, memory).topk(3, largest=False).values.mean(1)
    assert torch.allclose(knn_distance(queries, memory, 3, chunk=7), want, atol=1e-4)


def test_coreset_keeps_the_rare_state():
    g = torch.Generator().manual_seed(0)
    common = torch.randn(990, 4, generator=g) * 0.1
    rare = torch.randn(10, 4, generator=g) * 0.1 + 5.0
    chosen = greedy_coreset(torch.cat([common, rare]), 4, projection_dim=0)
    assert (chosen >= 990).any()  # k-center greedy reaches the far cluster; a 4-of-1000 random sample rarely does
    assert reduce_memory(torch.cat([common, rare]), 50, "kmeans").shape == (50, 4)


def test_graph_terms_by_hand():
    assert window_starts(10, 256) == [0] and window_starts(600, 256) == [0, 128, 256, 344]
    x = torch.tensor([[0.0], [0.1], [0.2], [5.0], [5.1]])
    index, weight, mask = snippet_graph([x], k=1, temporal=1, sharpness=4.0)
    assert index[0, 0] == 1 and index[3, 0] == 4  # nearest neighbour in the graph
    assert weight[2, 2] < 0.01  # the temporal edge 2 -> 3 crosses a change of state: almost no weight
    smoothed = diffuse(torch.tensor([0.0, 0.0, 0.0, 1.0, 0.0]), index, weight, alpha=1.0, steps=3)
    assert smoothed[4] > 0.3 and smoothed[2] < 0.01  # the event shares its score, the normal side does not


@pytest.mark.parametrize("graph", [False, True])
def test_fit_normal_localises_the_planted_anomaly(graph):
    ds, gt = planted_normal_dataset()
    model = fit_normal(ds, with_graph_terms(SMALL, graph))
    report = _test_report(model, ds, gt)
    assert report.auc > 0.9, report.format_table()


def test_memory_is_bounded_whatever_the_footage():
    ds, _ = planted_normal_dataset(sizes=(("train", 40, 0), ("val", 4, 0)))
    cfg = FitNormalConfig(memory=MemoryConfig(size=32, pool=128), device="cpu")
    result = NormalFitter(ds, cfg, progress=False).fit()
    seen, kept = result.stats["seen"], result.stats["kept"]
    assert set(kept) == {"clip", "frame", "patch", "motion"} and all(n == 32 for n in kept.values())
    assert seen["patch"] == 4 * seen["clip"] > 32 * 20
    assert result.model.head.memory("patch").shape == (32, D)


def test_calibrated_far_on_held_out_normal_videos():
    """The FAR threshold picked on the normal val videos gives about the target on unseen normal videos."""
    sizes = (("train", 30, 0), ("val", 40, 0), ("test", 40, 0))
    ds, gt = planted_normal_dataset(seed=1, sizes=sizes, length=(30, 50))
    result = NormalFitter(ds, SMALL, progress=False).fit()
    far = result.thresholds["far"]
    assert far["target_far"] == 0.01 and far["achieved_far"] <= 0.01
    report = _test_report(result.model, ds, gt, threshold=far["value"])
    assert 0.005 <= report.far <= 0.02, report.far
    assert "f1" not in result.thresholds  # no frame labels of abnormal videos in val


def test_one_class_checkpoint_round_trip(tmp_path):
    ds, gt = planted_normal_dataset()
    val_gt = {r.name: gt[r.name] for r in ds.split("val")}
    fitter = NormalFitter(ds, SMALL, val_gt, progress=False)
    result = fitter.fit()
    fitter.save(tmp_path / "m", result)
    info = json.loads((tmp_path / "m" / "config.json").read_text())
    assert info["model"]["arch"] == "oneclass" and set(info["thresholds"]) == {"far", "f1"}
    loaded = load_checkpoint(tmp_path / "m")
    assert loaded.model.head.memory("clip").shape == result.model.head.memory("clip").shape
    test = ds.split("test")
    before = score_records(result.model, test, None, ds.levels())
    after = score_records(loaded.model, test, None, loaded.levels)
    assert all(np.array_equal(before[n].snippets, after[n].snippets) for n in before)


def test_one_class_is_not_trained_with_labels():
    ds, _ = planted_normal_dataset()
    with pytest.raises(VadError, match="fit-normal"):
        train_model(ds, ModelConfig(arch="oneclass", feature_dim=D), TrainConfig(epochs=1, device="cpu"),
                    progress=False)
    abnormal_only, _ = planted_normal_dataset(sizes=(("train", 2, 1.0), ("val", 2, 0)), length=(12, 14))
    with pytest.raises(VadError, match="no normal training videos"):
        fit_normal(abnormal_only, SMALL)
    assert CalibrationConfig().target_far == 0.01
