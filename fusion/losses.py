"""Optional training regulariser on the fused graph: the LEGO paper's degree-variance term (our reading)."""

from __future__ import annotations

import torch
from torch import Tensor


def degree_variance(degrees: Tensor, node_mask: Tensor | None = None, eps: float = 1e-8) -> Tensor:
    """Scale-free spread of node degrees per video: :math:`Var_i(d_i) / (mean_i d_i)^2` over real nodes.

    Args:
        degrees: ``(B, N)`` node degrees of G (``LEGOOutput.degrees``).
        node_mask: ``(B, N)`` bool, True = real node; None = all real.
        eps: guard for videos without real nodes or with zero mean degree.

    Returns:
        ``(B,)`` squared coefficient of variation of each video's degrees.
    """
    mask = torch.ones_like(degrees, dtype=torch.bool) if node_mask is None else node_mask
    weight = mask.to(degrees.dtype)
    count = weight.sum(-1).clamp_min(1.0)
    mean = (degrees * weight).sum(-1) / count
    var = ((degrees - mean[:, None]).pow(2) * weight).sum(-1) / count
    return var / mean.pow(2).clamp_min(eps)


def degree_variance_loss(
    degrees: Tensor,
    labels: Tensor,
    node_mask: Tensor | None = None,
    k: int = 8,
    margin: float = 1.0,
) -> Tensor:
    """Degree-variance regulariser: flat degrees in normal videos, a few outlying degrees in abnormal ones.

    .. math::
        L = \\overline{V(d^{\\text{normal}})} + \\overline{\\max(0,\\ m - V_k(d^{\\text{abnormal}}))}

    with :math:`V` = :func:`degree_variance` over all real nodes and :math:`V_k` the squared distance of the
    mean of the k *lowest* normalised degrees from 1 (anomalous snippets relate weakly to the rest of the
    video). The paper states the idea (normal-video degrees vs top-k degrees of abnormal videos) without a
    unique formula; this is one bounded-below reading of it. Weak labels suffice: ``labels`` are per video.

    Args:
        degrees: ``(B, N)`` node degrees of G.
        labels: ``(B,)`` 1 = abnormal video, 0 = normal.
        node_mask: ``(B, N)`` bool, True = real node.
        k: nodes per abnormal video in the top-k term (clipped to each video's length).
        margin: m, the separation asked of abnormal videos.

    Returns:
        Scalar loss (0 for a batch with neither kind of video).
    """
    mask = torch.ones_like(degrees, dtype=torch.bool) if node_mask is None else node_mask
    abnormal = labels.bool()
    loss = degrees.new_zeros(())
    if (~abnormal).any():
        loss = loss + degree_variance(degrees[~abnormal], mask[~abnormal]).mean()
    if abnormal.any():
        deg, m = degrees[abnormal], mask[abnormal]
        weight = m.to(deg.dtype)
        mean = (deg * weight).sum(-1) / weight.sum(-1).clamp_min(1.0)
        relative = (deg / mean.abs().clamp_min(1e-8)[:, None]).masked_fill(~m, float("inf"))
        kk = min(k, deg.shape[1])
        lowest = relative.topk(kk, dim=-1, largest=False).values  # shape = [B_abn, k]
        found = torch.isfinite(lowest)
        low_mean = torch.where(found, lowest, torch.zeros_like(lowest)).sum(-1) / found.sum(-1).clamp_min(1)
        loss = loss + torch.relu(margin - (1.0 - low_mean).pow(2)).mean()
    return loss
