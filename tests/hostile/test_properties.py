"""Property-based: arbitrary bytes, JSON and arrays fed to the feature readers and the labels / annotation / ground
truth parsers end in a result or in our one-line error (a ``VadError``), never in a traceback of another kind."""
from __future__ import annotations

import io
import json
import tempfile
from pathlib import Path

import numpy as np
import pytest

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from hypothesis.extra import numpy as hnp  # noqa: E402

from vad.errors import VadError  # noqa: E402

SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
                    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner,
                                                                                max_size=4), max_leaves=12)
DTYPES = st.sampled_from(["float32", "float64", "float16", "int8", "int64", "uint8", "bool", "complex64", "<U3"])
ARRAYS = DTYPES.flatmap(lambda dt: hnp.arrays(dt, hnp.array_shapes(min_dims=0, max_dims=4, min_side=0, max_side=5)))
TEXTISH = st.one_of(st.binary(max_size=300),
                    st.text(alphabet=st.sampled_from(list("ab,;\t|\"\n\r 01-2é\x00\ufeff")), max_size=200)
                    .map(lambda s: s.encode("utf-8")))


def _clean(call):
    """Run ``call``; only a ``VadError`` may come out of it (its message one line or several lines of ours)."""
    try:
        return call()
    except VadError as exc:
        assert str(exc).strip()
        return None


def _npy_bytes(arr: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, arr)
    return buf.getvalue()


@SETTINGS
@given(data=st.binary(max_size=400))
def test_feature_file_of_arbitrary_bytes(data):
    from vad.features.store import TextFeatures, VideoFeatures

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "v.npz"
        path.write_bytes(data)
        _clean(lambda: VideoFeatures.load(path))
        _clean(lambda: TextFeatures.load(path))


@SETTINGS
@given(clip=ARRAYS, frame=st.none() | ARRAYS, meta=JSON, frame_times=st.none() | ARRAYS)
def test_feature_file_of_arbitrary_arrays(clip, frame, meta, frame_times):
    from vad.features.store import TextFeatures, VideoFeatures

    arrays = {"clip": clip, "meta_json": np.array(json.dumps(meta))}
    if frame is not None:
        arrays["frame"] = frame
    if frame_times is not None:
        arrays["frame_times"] = frame_times
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "v.npz"
        np.savez(path, **arrays)
        feats = _clean(lambda: VideoFeatures.load(path))
        if feats is not None:  # what loads is usable: finite, (N, D)
            assert feats.clip.ndim == 2 and np.isfinite(feats.clip).all()
        np.savez(path, embeddings=clip, meta_json=np.array(json.dumps(meta)))
        _clean(lambda: TextFeatures.load(path))


@SETTINGS
@given(arr=ARRAYS, raw=st.booleans(), data=st.binary(max_size=200))
def test_peer_readers_on_arbitrary_arrays(arr, raw, data):
    from vad.data.formats import detect_format, read_peer_features

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "Abuse001_x264.npy").write_bytes(data if raw else _npy_bytes(arr))
        (root / "Abuse001_x264__0.npy").write_bytes(data if raw else _npy_bytes(arr))
        (root / "train.list").write_text("Abuse001_x264.npy\n")
        (root / "crops.list").write_text("Abuse001_x264__0.npy\n")
        (root / "clip.csv").write_text("path,label\nAbuse001_x264__0.npy,Abuse\n")
        for source, fmt in (("train.list", "rtfm"), ("crops.list", "urdmu"), ("clip.csv", "vadclip"),
                            ("train.list", "auto"), ("Abuse001_x264.npy", "auto")):
            items = _clean(lambda s=source, f=fmt: read_peer_features(root / s, f, failed={}))
            for item in items or []:
                assert item.features.clip.ndim == 2 and np.isfinite(item.features.clip).all()
            _clean(lambda s=source: detect_format(root / s))


@SETTINGS
@given(data=TEXTISH)
def test_labels_csv_of_arbitrary_bytes(data):
    from vad.data.dataset import read_labels_csv

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "labels.csv"
        path.write_bytes(data)
        table = _clean(lambda: read_labels_csv(path))
        for label, _cls, split in (table or {}).values():
            assert label in (0, 1) and split in ("train", "val", "test")


@SETTINGS
@given(data=TEXTISH, manifest=JSON)
def test_annotations_lists_csvs_and_manifests_of_arbitrary_content(data, manifest):
    from vad.data.formats import read_vadclip_csv
    from vad.data.groundtruth import parse_ucf_annotations, read_gt_npy
    from vad.features.store import load_feature_dir, load_manifest
    from vad.synth.benchmark import read_labels

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        for name in ("ann.txt", "gt.list", "clip.csv", "labels.csv", "Temporal_Anomaly_Annotation.txt"):
            (root / name).write_bytes(data)
        np.save(root / "gt.npy", np.zeros(32, np.uint8))
        _clean(lambda: parse_ucf_annotations(root / "ann.txt"))
        _clean(lambda: read_gt_npy(root / "gt.npy", root / "gt.list", [16, 16]))
        _clean(lambda: read_vadclip_csv(root / "clip.csv", failed={}))
        _clean(lambda: read_labels(root))
        (root / "manifest.json").write_text(json.dumps(manifest))
        _clean(lambda: load_manifest(root))
        _clean(lambda: load_feature_dir(root, failed={}))
        (root / "manifest.json").write_bytes(data)
        _clean(lambda: load_manifest(root))


@SETTINGS
@given(gt=ARRAYS)
def test_ground_truth_npy_of_arbitrary_arrays(gt):
    from vad.data.groundtruth import read_gt_npy

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "gt.npy").write_bytes(_npy_bytes(gt))
        (root / "gt.list").write_text("a\nb\n")
        truth = _clean(lambda: read_gt_npy(root / "gt.npy", root / "gt.list", [2, 3]))
        if truth is not None:
            assert all(set(np.unique(g)) <= {0, 1} for g in truth.frames.values())


@SETTINGS
@given(model=JSON, top=st.dictionaries(st.sampled_from(["levels", "prompts", "backbone", "format"]), JSON))
def test_model_config_of_arbitrary_json(model, top, tmp_path_factory):
    from vad.models.checkpoint import _read_config
    from vad.models.config import ModelConfig

    path = tmp_path_factory.getbasetemp() / "config.json"
    base = ModelConfig().to_dict()
    for candidate in (model, {**base, **model} if isinstance(model, dict) else model):
        path.write_text(json.dumps({"model": candidate, **top}))
        _clean(lambda: _read_config(path))
