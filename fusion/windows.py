"""Overlapping windows over the snippet axis, for linear-cost graphs on long videos.

Each sample (of real length L) is covered by windows of ``width`` nodes starting every ``stride`` nodes; the
last window is aligned to the end of the sample (start ``L - width``), so no window holds trailing padding
unless the whole sample is shorter than a window. Every real node takes its outputs from the window whose
centre is nearest (the window where it is most central, i.e. has the most context on both sides). The layout
depends only on each sample's own length, so padding a batch never changes a real node's outputs.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor


@dataclass(frozen=True)
class WindowLayout:
    """Where the windows of each sample start and which window each node reads its outputs from.

    Shapes: ``B`` samples, ``N`` padded length, ``M`` most windows of any sample.
    """

    starts: Tensor  # (B, M) long: first node of window w of sample b (repeats the last start past `counts`)
    counts: Tensor  # (B,) long: windows sample b uses
    owner: Tensor  # (B, N) long: window each node takes its outputs from; -1 past the sample's length
    width: int  # nodes per window: min(window, N)


def sample_lengths(node_mask: Tensor | None, batch: int, num_nodes: int, device: torch.device) -> Tensor:
    """Real length of each sample, last real node's index + 1 (0 if none): ``(B, N)`` bool -> ``(B,)``."""
    if node_mask is None:
        return torch.full((batch,), num_nodes, dtype=torch.long, device=device)
    positions = torch.arange(1, num_nodes + 1, device=device)
    return (node_mask.long() * positions).amax(dim=-1)


def window_layout(lengths: Tensor, num_nodes: int, window: int, overlap: int) -> WindowLayout:
    """Cover each sample with windows of ``window`` nodes, consecutive windows sharing ``overlap`` nodes.

    Args:
        lengths: ``(B,)`` long real length of each sample (<= num_nodes).
        num_nodes: N, the padded length.
        window: W, nodes per window (clipped to N).
        overlap: nodes shared by consecutive windows, ``0 <= overlap < W``.

    Returns:
        The :class:`WindowLayout`. Windows per sample: 1 if L <= W else ceil((L - W) / (W - overlap)) + 1, so
        the number of windows, and the work, grow linearly with L.
    """
    if not 0 <= overlap < window:
        raise ValueError(f"need 0 <= overlap < window, got overlap={overlap}, window={window}")
    device = lengths.device
    width = min(window, num_nodes)
    stride = window - overlap
    excess = (lengths - width).clamp_min(0)  # shape = [B]
    counts = torch.where(lengths <= width, torch.ones_like(lengths), (excess + stride - 1) // stride + 1)
    most = int(counts.max().item()) if counts.numel() else 1
    regular = torch.arange(most, device=device) * stride  # shape = [M]
    starts = torch.minimum(regular[None, :], excess[:, None])  # shape = [B, M]; last window ends at L
    owner = torch.zeros(lengths.shape[0], num_nodes, dtype=torch.long, device=device)
    if most > 1:
        centers = starts.double() + (width - 1) / 2.0
        midpoints = (centers[:, :-1] + centers[:, 1:]) / 2.0  # shape = [B, M-1]; boundary between w and w+1
        # boundary to an unused window
        beyond = torch.arange(1, most, device=device)[None, :] >= counts[:, None]
        midpoints = midpoints.masked_fill(beyond, float("inf"))
        positions = torch.arange(num_nodes, device=device, dtype=torch.double).expand(lengths.shape[0], -1)
        # midpoints below each node
        owner = torch.searchsorted(midpoints.contiguous(), positions.contiguous())
    past_end = torch.arange(num_nodes, device=device)[None, :] >= lengths[:, None]
    return WindowLayout(starts=starts, counts=counts, owner=owner.masked_fill(past_end, -1), width=width)


def gather_windows(x: Tensor, sample: Tensor, starts: Tensor, width: int) -> Tensor:
    """Cut windows out of a batch of node tensors.

    Args:
        x: ``(B, N, *)`` per-node tensor.
        sample: ``(C,)`` long, the sample each window comes from.
        starts: ``(C,)`` long, the first node of each window.
        width: nodes per window.

    Returns:
        ``(C, width, *)`` with ``out[c, t] = x[sample[c], starts[c] + t]``.
    """
    index = starts[:, None] + torch.arange(width, device=starts.device)  # shape = [C, width]
    return x[sample[:, None], index]
