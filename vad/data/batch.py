"""Batches of padded tensors: ``FeatureBatch``, ``collate`` and snippet resampling."""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields, replace

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from vad.errors import FeatureError
from vad.features.store import VideoFeatures


@dataclass
class FeatureBatch:
    """Padded tensors of B videos.

    Shapes: clip ``(B, N, D)``; frame ``(B, N, F, D)`` or None; patch ``(B, N, P, D)`` or None;
    motion ``(B, N, M)`` or None; text ``(K, D)`` or None; node_mask ``(B, N)`` bool (True = real snippet).
    """

    clip: Tensor
    node_mask: Tensor
    frame: Tensor | None = None
    patch: Tensor | None = None
    text: Tensor | None = None
    motion: Tensor | None = None

    def to(self, device: torch.device | str) -> FeatureBatch:
        """The batch on ``device`` (non-blocking: pin the batch first on CUDA)."""
        return FeatureBatch(**{f.name: _move(getattr(self, f.name), device) for f in fields(self)})

    def level(self, name: str) -> Tensor | None:
        """The tensor of a feature level by name (``clip``, ``frame``, ``patch``, ``motion``, ``text``)."""
        return getattr(self, name)

    def centered(self, sorted_median: bool = False) -> FeatureBatch:
        """Each video's visual features minus that video's per-dimension median over its real snippets.

        CLIP features of one scene are nearly parallel (cosine ~0.9); what changes over a video is a small
        residual. The median (not the mean) is the video's usual state whenever anomalies cover under half of
        it, so normal snippets sit near 0 and abnormal ones away from it. (With the mean, an abnormal video's
        normal snippets are pushed opposite to its anomaly, and MIL can learn that inverted cue.)
        ``sorted_median`` computes the same median with :func:`masked_median` (ONNX has no ``nanmedian``).
        """
        m = self.node_mask

        def center(t: Tensor | None) -> Tensor | None:
            if t is None:
                return None
            wt = m.view(*m.shape, *([1] * (t.dim() - 2)))
            if sorted_median:
                return (t - masked_median(t, m)) * wt
            median = t.masked_fill(~wt, float("nan")).nanmedian(dim=1, keepdim=True).values
            return (t - median.nan_to_num(0.0)) * wt

        return replace(self, clip=center(self.clip), frame=center(self.frame), patch=center(self.patch),
                       motion=center(self.motion))

    @property
    def lengths(self) -> Tensor:
        """Real snippets per video, ``(B,)``."""
        return self.node_mask.sum(1)


def masked_median(t: Tensor, node_mask: Tensor) -> Tensor:
    """Lower median over dim 1 of the real snippets by sort + gather, ``(B, N, ...) → (B, 1, ...)``; 0 if none.

    Equals ``nanmedian`` of ``t`` with padding set to NaN (then NaN → 0), in ops that ONNX exports.
    """
    wt = node_mask.view(*node_mask.shape, *([1] * (t.dim() - 2)))
    ranked = t.masked_fill(~wt, float("inf")).sort(dim=1).values  # real values first, ascending
    count = node_mask.sum(1).view(-1, 1, *([1] * (t.dim() - 2)))  # shape = [B, 1, 1...]
    pos = ((count - 1).clamp(min=0) // 2).expand(-1, 1, *t.shape[2:])
    return ranked.gather(1, pos).masked_fill(count == 0, 0.0)


def _move(t: Tensor | None, device: torch.device | str) -> Tensor | None:
    return None if t is None else t.to(device, non_blocking=True)


def resample(x: np.ndarray, length: int) -> np.ndarray:
    """Average-pool (or repeat) the first axis of ``x`` to ``length`` rows (the MIL training protocol)."""
    n = x.shape[0]
    if n == length:
        return x
    edges = np.linspace(0, n, length + 1)
    starts = np.floor(edges[:-1]).astype(int)
    stops = np.maximum(starts + 1, np.ceil(edges[1:]).astype(int))
    return np.stack([x[s:e].mean(0) for s, e in zip(starts, stops)])


def collate(videos: Sequence[VideoFeatures], levels: Sequence[str], text: np.ndarray | None,
            length: int | None = None, pad_short: bool = False) -> FeatureBatch:
    """Stack videos into a :class:`FeatureBatch`.

    ``length=None`` pads to the longest video. ``length=T`` resamples every video to T snippets (the MIL
    protocol); with ``pad_short`` only longer videos are average-pooled down to T and shorter ones are padded,
    so a short video's snippets are never duplicated (duplicates would fake temporal neighbours in training).
    """
    def target(v: VideoFeatures) -> int:
        if length is None:
            return v.num_snippets
        return min(length, v.num_snippets) if pad_short else length

    def level(v: VideoFeatures, name: str) -> np.ndarray:
        arr = getattr(v, name)
        if arr is None:
            raise FeatureError(f"{v.meta.name}: has no {name}-level features (levels: {', '.join(v.levels())})")
        return resample(arr, target(v))

    n = max(target(v) for v in videos)
    mask = torch.zeros(len(videos), n, dtype=torch.bool)
    tensors: dict[str, Tensor] = {}
    for name in ["clip", *[lvl for lvl in levels if lvl not in ("clip", "text")]]:
        rows = [torch.from_numpy(level(v, name)) for v in videos]
        padded = [F.pad(r, (0, 0) * (r.dim() - 1) + (0, n - r.shape[0])) for r in rows]
        tensors[name] = torch.stack(padded)
    for i, v in enumerate(videos):
        mask[i, : target(v)] = True
    return FeatureBatch(tensors["clip"], mask, tensors.get("frame"), tensors.get("patch"),
                        None if text is None else torch.as_tensor(text, dtype=torch.float32), tensors.get("motion"))
