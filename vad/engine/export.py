"""ONNX export of a trained scoring head, and scoring through onnxruntime (``vad export``, ``--runtime onnx``).

The exported graph scores ONE video (batch 1, no padding) of any number of snippets N: inputs ``clip (1, N, D)``
and, as the checkpoint's levels require, ``frame (1, N, F, D)``, ``patch (1, N, P, D)``, ``motion (1, N, M)``;
output ``scores (1, N)``. The prompt embeddings are baked in as a constant. Medians are computed by sort +
gather while exporting (ONNX has no ``nanmedian``; same numbers, see :meth:`AnomalyModel.set_exportable`).

Not exported (one-line :class:`VadError` naming the variant): hop-diffused or dense attention, MM-QFormer,
the MTN baseline (torch's multi-head attention), the one-class and zero-shot models, and windowed LEGO (its
loop over a length-dependent number of windows is unrolled by tracing). A ``mode="auto"`` LEGO model exports
its dense path, so the ONNX model scores videos of at most ``window_size`` snippets and refuses longer ones
with a clear error (score those with ``--runtime torch``).
"""
from __future__ import annotations

import logging
import os
import tempfile
import warnings
from pathlib import Path

import numpy as np
import torch
from torch import Tensor, nn

from vad.data.batch import FeatureBatch
from vad.engine.inference import VideoScores, prompt_match
from vad.engine.metrics import expand_to_frames
from vad.errors import FeatureError, VadError
from vad.features.store import VideoFeatures
from vad.models.checkpoint import LoadedModel, load_checkpoint
from vad.models.config import ModelConfig

log = logging.getLogger(__name__)
ONNX_FILE = "model.onnx"
OPSET = 17
OPTIONAL_LEVELS = ("frame", "patch", "motion")  # per-snippet levels besides clip that the graph may take


def export_blocker(config: ModelConfig) -> str | None:
    """Why a model variant cannot be exported to ONNX (``"variant: reason"``), or None when it can."""
    if config.arch in ("oneclass", "zeroshot"):
        return f"arch={config.arch}: its windowed graph terms and memory search are not traceable"
    if config.arch == "mtn_concat":
        return "arch=mtn_concat: torch's multi-head attention (non-local block) does not export for any N"
    if config.arch != "vadgraph":
        return None
    if config.attention == "hop":
        return "attention=hop: hop-diffused attention gathers data-dependent neighbour lists"
    if config.attention == "plain":
        return "attention=plain: torch's transformer layer does not export for any N (train with attention=none)"
    if config.qformer and config.uses("text"):
        return "qformer=True: MM-QFormer is not exported (train with qformer=False)"
    if config.fusion == "lego" and config.lego.mode == "windowed":
        return "lego.mode=windowed: the loop over a length-dependent number of windows does not trace"
    return None


def max_snippets(config: ModelConfig) -> int:
    """Longest video the exported graph scores exactly (0 = any): LEGO's window size in ``mode="auto"``."""
    if config.arch == "vadgraph" and config.fusion == "lego" and config.lego.mode == "auto":
        return config.lego.window_size
    return 0


def graph_inputs(loaded: LoadedModel) -> list[str]:
    """Names of the exported graph's inputs: clip, then the checkpoint's other per-snippet levels."""
    return ["clip", *[lvl for lvl in OPTIONAL_LEVELS if lvl in loaded.levels]]


class ExportHead(nn.Module):
    """One unpadded video's levels → snippet scores ``(1, N)``, with the prompt embeddings as a constant."""

    def __init__(self, loaded: LoadedModel) -> None:
        super().__init__()
        self.model = loaded.model
        self.names = graph_inputs(loaded)
        self.register_buffer("text", None if loaded.text is None else torch.as_tensor(loaded.text).float())

    def forward(self, clip: Tensor, *levels: Tensor) -> Tensor:
        """Scores of every snippet of the one video."""
        given = dict(zip(self.names[1:], levels))
        mask = torch.ones_like(clip[..., 0], dtype=torch.bool)  # shape = [1, N], all real
        batch = FeatureBatch(clip, mask, given.get("frame"), given.get("patch"), self.text, given.get("motion"))
        return self.model(batch).scores


def _example(loaded: LoadedModel, n: int) -> tuple[Tensor, ...]:
    """Random inputs of ``n`` snippets in the shapes of the checkpoint's features (trace inputs)."""
    cfg, bb = loaded.model.config, loaded.backbone
    g = torch.Generator().manual_seed(0)
    shapes = {"clip": (1, n, cfg.feature_dim),
              "frame": (1, n, max(1, int(bb.get("frames_per_snippet", 1))), cfg.feature_dim),
              "patch": (1, n, max(1, int(bb.get("patch_grid", 2))) ** 2, cfg.feature_dim),
              "motion": (1, n, max(1, cfg.motion_dim))}
    return tuple(torch.randn(*shapes[name], generator=g) for name in graph_inputs(loaded))


def _fix_eyelike(graph) -> None:
    """Rewrite ``EyeLike`` on bool inputs (no onnxruntime kernel) as Cast → float EyeLike → CastLike, in place."""
    from onnx import TensorProto, helper

    nodes = []
    for node in graph.node:
        if node.op_type != "EyeLike" or any(a.name == "dtype" for a in node.attribute):
            nodes.append(node)
            continue
        x, out = node.input[0], node.output[0]
        attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
        nodes += [helper.make_node("Cast", [x], [out + "_f_in"], to=TensorProto.FLOAT),
                  helper.make_node("EyeLike", [out + "_f_in"], [out + "_f"], name=node.name, **attrs),
                  helper.make_node("CastLike", [out + "_f", x], [out])]
    del graph.node[:]
    graph.node.extend(nodes)


def export_loaded(loaded: LoadedModel, out_path: str | os.PathLike) -> Path:
    """Export a loaded checkpoint's scoring head to ``out_path`` (see the module docstring); returns the path."""
    import onnx

    cfg = loaded.model.config
    reason = export_blocker(cfg)
    if reason:
        raise VadError(f"cannot export this model to ONNX: {reason}")
    out = Path(out_path)
    out.parent.mkdir(parents=True, exist_ok=True)
    head = ExportHead(loaded).eval()
    names = head.names
    limit = max_snippets(cfg)
    n = min(16, limit) if limit else 16  # traced length: above LEGO's top-k, inside its window
    loaded.model.set_exportable(True)
    try:
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")  # tracer warnings about shape checks turned into constants
            torch.onnx.export(head, _example(loaded, n), str(out), dynamo=False, opset_version=OPSET,
                              input_names=names, output_names=["scores"],
                              dynamic_axes={name: {1: "N"} for name in [*names, "scores"]})
    finally:
        loaded.model.set_exportable(False)
    proto = onnx.load(str(out))
    _fix_eyelike(proto.graph)
    for key, value in (("vadgraph.max_snippets", str(limit)), ("vadgraph.arch", cfg.arch)):
        proto.metadata_props.add(key=key, value=value)
    onnx.checker.check_model(proto)
    onnx.save(proto, str(out))
    return out


def export_onnx(model_dir: str | os.PathLike, out_path: str | os.PathLike | None = None) -> Path:
    """Export the model in ``model_dir`` to ``out_path`` (default ``model_dir/model.onnx``); returns the path."""
    return export_loaded(load_checkpoint(model_dir, "cpu"), out_path or Path(model_dir) / ONNX_FILE)


class OnnxModel:
    """An exported scoring head run by onnxruntime (CPU): ``scores(features) → (N,)``."""

    def __init__(self, path: str | os.PathLike) -> None:
        import onnxruntime as ort

        self.path = Path(path)
        try:
            self.session = ort.InferenceSession(str(self.path), providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime raises its own exception types
            raise VadError(f"{self.path}: not a loadable ONNX model ({str(exc).splitlines()[0]})") from exc
        meta = self.session.get_modelmeta().custom_metadata_map
        self.max_snippets = int(meta.get("vadgraph.max_snippets", "0"))
        self.inputs = [i.name for i in self.session.get_inputs()]

    def scores(self, features: VideoFeatures) -> np.ndarray:
        """Snippet scores ``(N,)`` of one video."""
        n = features.num_snippets
        if self.max_snippets and n > self.max_snippets:
            raise VadError(f"{features.meta.name}: {n} snippets is over the {self.max_snippets} the ONNX model "
                           f"scores (windowed LEGO is not exported); score it with `runtime` torch")
        feed = {}
        for name in self.inputs:
            arr = getattr(features, name)
            if arr is None:
                raise FeatureError(f"{features.meta.name}: has no {name}-level features, the ONNX model needs them")
            feed[name] = np.ascontiguousarray(arr, dtype=np.float32)[None]
        return self.session.run(["scores"], feed)[0][0]


def score_features_onnx(model: OnnxModel, features: VideoFeatures, text: np.ndarray | None) -> VideoScores:
    """:func:`vad.engine.inference.score_features` through onnxruntime."""
    snippets = model.scores(features)
    frames = expand_to_frames(snippets, features.num_video_frames, features.meta.snippet_len)
    best, similarity = prompt_match(features, text)
    return VideoScores(features.meta.name, snippets, frames, features.meta.fps, features.meta.snippet_len,
                       best, features.frame_times, similarity)


def onnx_model_for(model_dir: str | os.PathLike) -> OnnxModel:
    """``model_dir/model.onnx`` in onnxruntime, exported first (and said so) when the directory has none."""
    path = Path(model_dir) / ONNX_FILE
    if not path.is_file():
        log.warning("%s has no %s: exporting the model to ONNX now (`vad export` does it once)", model_dir,
                    ONNX_FILE)
        try:
            export_onnx(model_dir, path)
        except OSError:  # read-only model directory: export into a temporary directory instead
            path = export_onnx(model_dir, Path(tempfile.mkdtemp(prefix="vad-onnx-")) / ONNX_FILE)
    return OnnxModel(path)
