"""ONNX export: parity with torch over video lengths, clear errors for what does not export, `--runtime onnx`."""
import csv
import shutil

import numpy as np
import pytest
import torch

pytest.importorskip("onnxruntime")
pytest.importorskip("onnx")

from apps.cli import main  # noqa: E402
from fusion import LEGOConfig  # noqa: E402
from tests.media import write_video  # noqa: E402
from vad.data.batch import FeatureBatch  # noqa: E402
from vad.engine.export import OnnxModel, export_loaded, score_features_onnx  # noqa: E402
from vad.errors import VadError  # noqa: E402
from vad.features.store import VideoFeatures, VideoMeta  # noqa: E402
from vad.models.anomaly import AnomalyModel  # noqa: E402
from vad.models.checkpoint import LoadedModel  # noqa: E402
from vad.models.config import ModelConfig  # noqa: E402
from vad.models.heads import center_per_video  # noqa: E402

D, F, P, K, M = 32, 2, 4, 5, 3
LEVELS = ("clip", "frame", "patch", "text", "motion")
LENGTHS = (1, 2, 7, 37, 256)


def _loaded(config: ModelConfig, seed: int = 0) -> LoadedModel:
    """A model with perturbed (non-initial) weights, scales and relation RMS, as a loaded checkpoint."""
    torch.manual_seed(seed)
    model = AnomalyModel(config).eval()
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.1 * torch.randn_like(p))  # the zero-initialised context scorer too
        model.input_scale.uniform_(0.5, 2.0)
        model.motion_scale.uniform_(0.5, 2.0)
        for head in (model.head, *model.more_members):
            norm = getattr(head, "relation_norm", None)
            if norm is not None:
                norm.rms.uniform_(0.05, 1.0)
    text = np.random.default_rng(seed).standard_normal((K, D)).astype(np.float32)
    return LoadedModel(model, LEVELS, text, [], {"frames_per_snippet": F, "patch_grid": 2}, {})


def _video(n: int, seed: int) -> VideoFeatures:
    rng = np.random.default_rng(seed)
    meta = VideoMeta(name=f"v{n}", fps=25.0, num_frames=8 * n, snippet_len=8)
    return VideoFeatures(rng.standard_normal((n, D), dtype=np.float32), meta,
                         frame=rng.standard_normal((n, F, D), dtype=np.float32),
                         patch=rng.standard_normal((n, P, D), dtype=np.float32),
                         motion=rng.standard_normal((n, M), dtype=np.float32))


def _torch_scores(loaded: LoadedModel, video: VideoFeatures) -> np.ndarray:
    from vad.engine.inference import score_features

    return score_features(loaded.model, video, loaded.text, loaded.levels).snippets


EXPORTABLE = {
    "vadgraph": ModelConfig(feature_dim=D, hidden=16, num_prompts=K, motion_dim=M),
    "readout-both": ModelConfig(feature_dim=D, hidden=16, num_prompts=K, motion_dim=M, readout="both"),
    "concat": ModelConfig(feature_dim=D, hidden=16, num_prompts=K, motion_dim=M, fusion="concat"),
    "lego-dense": ModelConfig(feature_dim=D, hidden=16, num_prompts=K, motion_dim=M,
                              lego=LEGOConfig(P=2, Q=2, top_k=8, train_pair_sampling=False, mode="dense")),
    "mil_mlp": ModelConfig(arch="mil_mlp", feature_dim=D, num_prompts=K, motion_dim=M),
    "ensemble-3": ModelConfig(feature_dim=D, hidden=16, num_prompts=K, motion_dim=M, members=3),
}


@pytest.mark.parametrize("name", EXPORTABLE)
def test_onnx_matches_torch_over_lengths(name, tmp_path):
    loaded = _loaded(EXPORTABLE[name])
    onnx_model = OnnxModel(export_loaded(loaded, tmp_path / "m.onnx"))
    lengths = (*LENGTHS, 300) if onnx_model.max_snippets == 0 else LENGTHS
    for n in lengths:
        video = _video(n, seed=n)
        got = score_features_onnx(onnx_model, video, loaded.text).snippets
        want = _torch_scores(loaded, video)
        assert got.shape == want.shape == (n,)
        assert np.abs(got - want).max() < 1e-4, (name, n)


def test_windowed_lengths_are_refused_clearly(tmp_path):
    loaded = _loaded(EXPORTABLE["vadgraph"])
    onnx_model = OnnxModel(export_loaded(loaded, tmp_path / "m.onnx"))
    assert onnx_model.max_snippets == 256
    with pytest.raises(VadError, match=r"300 snippets is over the 256.*windowed LEGO.*`runtime` torch"):
        onnx_model.scores(_video(300, seed=1))
    lego = LEGOConfig(P=2, Q=2, top_k=8, train_pair_sampling=False, mode="windowed")
    with pytest.raises(VadError, match="cannot export.*lego.mode=windowed"):
        export_loaded(_loaded(ModelConfig(feature_dim=D, hidden=16, num_prompts=K, lego=lego)), tmp_path / "w.onnx")


@pytest.mark.parametrize(("overrides", "named"), [
    ({"attention": "hop"}, "attention=hop"), ({"qformer": True}, "qformer=True"),
    ({"attention": "plain"}, "attention=plain"), ({"arch": "mtn_concat"}, "arch=mtn_concat"),
    ({"arch": "oneclass"}, "arch=oneclass"),
])
def test_non_exportable_variants_fail_with_one_line(overrides, named, tmp_path):
    loaded = _loaded(ModelConfig(feature_dim=D, hidden=16, num_prompts=K, **overrides))
    with pytest.raises(VadError, match=f"cannot export this model to ONNX: {named}") as info:
        export_loaded(loaded, tmp_path / "m.onnx")
    assert "\n" not in str(info.value)
    assert not (tmp_path / "m.onnx").exists()


@pytest.mark.parametrize("lengths", [[9, 9], [12, 7, 3], [1, 6]])
def test_sorted_median_equals_nanmedian(lengths):
    g = torch.Generator().manual_seed(len(lengths))
    n = max(lengths)
    mask = torch.zeros(len(lengths), n, dtype=torch.bool)
    for i, length in enumerate(lengths):
        mask[i, :length] = True
    mask[-1, 0] = False  # a hole: real snippets need not be a prefix
    batch = FeatureBatch(torch.randn(len(lengths), n, D, generator=g), mask,
                         torch.randn(len(lengths), n, F, D, generator=g), torch.randn(len(lengths), n, P, D,
                                                                                    generator=g))
    a, b = batch.centered(), batch.centered(sorted_median=True)
    for lvl in ("clip", "frame", "patch"):
        assert torch.equal(a.level(lvl), b.level(lvl)), lvl
    x = torch.randn(len(lengths), n, 7, generator=g)
    assert torch.equal(center_per_video(x, mask), center_per_video(x, mask, sorted_median=True))


def test_vad_export_and_score_runtime_onnx_match_torch(tmp_path, trained_model, capsys):
    model = shutil.copytree(trained_model, tmp_path / "model")  # the onnx run writes model.onnx into it
    video = tmp_path / "in" / "clip.mp4"
    video.parent.mkdir()
    write_video(video, num_frames=48, seed=4)
    assert main(["-q", "export", str(model), "--out", str(tmp_path / "x.onnx")]) == 0
    assert (tmp_path / "x.onnx").is_file() and "export:" in capsys.readouterr().out
    outputs = {}
    for runtime in ("torch", "onnx"):
        out = tmp_path / runtime
        assert main(["-q", "score", str(video.parent), "--model", str(model), "--out", str(out),
                     "--device", "cpu", "--runtime", runtime]) == 0
        with (out / "clip.scores.csv").open(newline="") as fh:
            outputs[runtime] = np.array([float(row["score"]) for row in csv.DictReader(fh)])
    assert (model / "model.onnx").is_file()  # exported on the fly by the first onnx run
    assert outputs["torch"].shape == outputs["onnx"].shape and outputs["torch"].size
    assert np.abs(outputs["torch"] - outputs["onnx"]).max() < 1e-4

