import json
import os

import numpy as np
import pytest

from tests.media import opencv_doc_video, write_video
from vad.errors import FeatureError, VadError
from vad.features.extract import ExtractConfig, FeatureExtractor, extract_videos, read_prompt_file
from vad.features.store import VideoFeatures, feature_path, load_feature_dir
from vad.features.video import SnippetConfig


@pytest.fixture(scope="module")
def extractor(tiny_backbone_config):
    cfg = ExtractConfig(backbone=tiny_backbone_config, snippets=SnippetConfig(8, 2), batch_snippets=2)
    return FeatureExtractor(cfg)


def test_levels_shapes_and_metadata(extractor, video_file):
    feats = extractor.extract(video_file)
    assert feats.clip.shape == (5, 64)  # 40 frames / S=8
    assert feats.frame.shape == (5, 2, 64)
    assert feats.patch.shape == (5, 4, 64)
    assert feats.frame_indices.shape == (5, 2)
    assert feats.meta.num_frames == 40 and feats.meta.fps == pytest.approx(15.0)
    assert feats.meta.backbone == "vadgraph-tiny-ViT" and feats.meta.weights.endswith("tiny.safetensors")
    assert np.allclose(np.linalg.norm(feats.clip, axis=1), 1, atol=1e-5)


def test_deterministic(extractor, video_file):
    a, b = extractor.extract(video_file), extractor.extract(video_file)
    assert np.array_equal(a.clip, b.clip) and np.array_equal(a.patch, b.patch)


@pytest.mark.parametrize("prefetch, workers", [(2, 1), (1, 3), (2, 4)])
def test_decode_threads_do_not_change_results(tiny_backbone, tiny_backbone_config, video_file, prefetch, workers):
    """Decoding in the encoder's thread, in one background thread, or in several gives the same features,
    every level (motion included) in snippet order."""
    base = ExtractConfig(backbone=tiny_backbone_config, snippets=SnippetConfig(8, 2), batch_snippets=2)
    sync = FeatureExtractor(ExtractConfig(**{**base.__dict__, "prefetch": 0}), backbone=tiny_backbone)
    threaded = FeatureExtractor(ExtractConfig(**{**base.__dict__, "prefetch": prefetch, "decode_workers": workers}),
                                backbone=tiny_backbone)
    a, b = sync.extract(video_file), threaded.extract(video_file)
    for level in ("frame", "patch", "motion"):
        assert np.array_equal(getattr(a, level), getattr(b, level)), level


def test_features_differ_between_snippets(extractor, video_file):
    """The moving disc makes snippets differ: features are computed per snippet, not copied."""
    feats = extractor.extract(video_file)
    sims = feats.clip @ feats.clip.T
    assert sims[0, -1] < 0.9999


def test_save_load_round_trip_and_bad_file(extractor, video_file, tmp_path):
    feats = extractor.extract(video_file)
    feats.save(tmp_path / "f.npz")
    back = VideoFeatures.load(tmp_path / "f.npz")
    assert np.array_equal(back.clip, feats.clip) and back.meta == feats.meta
    (tmp_path / "bad.npz").write_bytes(b"garbage")
    with pytest.raises(FeatureError, match="not a vadgraph feature file"):
        VideoFeatures.load(tmp_path / "bad.npz")


def test_wrong_feature_shape_is_named():
    from vad.features.store import VideoMeta

    with pytest.raises(FeatureError, match="frame features must be"):
        VideoFeatures(clip=np.zeros((4, 8)), frame=np.zeros((3, 2, 8)), meta=VideoMeta(name="v"))


def test_batch_run_with_good_and_bad_files_then_resume(extractor, tmp_path, bad_videos):
    videos = tmp_path / "in"
    videos.mkdir()
    write_video(videos / "good1.mp4", seed=1)
    write_video(videos / "good2.mp4", seed=2, num_frames=20)
    for p in bad_videos.values():
        os.link(p, videos / p.name)
    out = tmp_path / "feats"
    report = extract_videos([videos], out, extractor.config, extractor=extractor, progress=False)
    assert sorted(report.written) == ["good1", "good2"]
    assert len(report.failed) == len(bad_videos) and report.exit_code == 1
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["videos"]["good1"]["status"] == "ok"
    assert all(manifest["videos"][p.stem]["status"] == "failed" for p in bad_videos.values())
    assert not list(out.glob("*.part"))  # nothing half-written
    feats, text = load_feature_dir(out)
    assert set(feats) == {"good1", "good2"} and text.embeddings.shape == (14, 64)

    mtime = feature_path(out, "good1").stat().st_mtime_ns
    again = extract_videos([videos], out, extractor.config, extractor=extractor, progress=False)
    assert sorted(again.skipped) == ["good1", "good2"] and not again.written
    assert feature_path(out, "good1").stat().st_mtime_ns == mtime


def test_interrupted_write_leaves_no_partial_file(extractor, video_file, tmp_path, monkeypatch):
    import vad.io as io

    def boom(fh, **arrays):
        fh.write(b"half")
        raise KeyboardInterrupt

    monkeypatch.setattr(io.np, "savez", boom)
    with pytest.raises(KeyboardInterrupt):
        extract_videos([video_file], tmp_path / "out", extractor.config, extractor=extractor, progress=False)
    assert not list((tmp_path / "out").glob("clip*"))
    assert not list((tmp_path / "out").glob(".*part"))


def test_refuses_to_mix_backbones(extractor, video_file, tmp_path):
    out = tmp_path / "out"
    extract_videos([video_file], out, extractor.config, extractor=extractor, progress=False)
    other = ExtractConfig(backbone=extractor.config.backbone, snippets=SnippetConfig(16, 1))
    with pytest.raises(VadError, match="snippet_len"):
        extract_videos([video_file], out, other, extractor=extractor, progress=False)


def test_prompt_file(tmp_path):
    (tmp_path / "p.txt").write_text("# mine\nnormal\nfalling\n\nloitering\n")
    assert read_prompt_file(tmp_path / "p.txt") == ("normal", "falling", "loitering")
    (tmp_path / "one.txt").write_text("normal\n")
    with pytest.raises(VadError):
        read_prompt_file(tmp_path / "one.txt")


def test_real_footage_vtest(extractor, tmp_path):
    path = opencv_doc_video("vtest.avi")
    feats = extractor.extract(path)
    assert feats.num_snippets == int(np.ceil(feats.meta.num_frames / 8))
    assert np.isfinite(feats.clip).all() and feats.meta.fps == pytest.approx(10.0)
