"""Tests for fusion/losses.py: the degree-variance regulariser."""

from __future__ import annotations

import pytest
import torch

from fusion.losses import degree_variance, degree_variance_loss


def test_degree_variance_is_zero_for_flat_degrees_and_ignores_padding() -> None:
    degrees = torch.tensor([[2.0, 2.0, 2.0, 99.0], [1.0, 3.0, 1.0, 3.0]])
    mask = torch.tensor([[True, True, True, False], [True, True, True, True]])
    out = degree_variance(degrees, mask)
    assert out[0].item() == pytest.approx(0.0)
    assert out[1].item() == pytest.approx(0.25)  # var 1 / mean^2 4


def test_degree_variance_loss_prefers_flat_normal_and_outlying_abnormal_videos() -> None:
    flat = torch.full((1, 10), 5.0)
    outlier = flat.clone()
    outlier[0, :2] = 0.5
    labels_normal, labels_abnormal = torch.tensor([0]), torch.tensor([1])
    assert degree_variance_loss(flat, labels_normal) < degree_variance_loss(outlier, labels_normal)
    assert degree_variance_loss(outlier, labels_abnormal, k=2) < degree_variance_loss(
        flat, labels_abnormal, k=2
    )


def test_degree_variance_loss_has_gradients_and_handles_mixed_batches() -> None:
    degrees = torch.rand(4, 12, generator=torch.Generator().manual_seed(0)).add(0.5).requires_grad_()
    mask = torch.ones(4, 12, dtype=torch.bool)
    mask[3, 6:] = False
    loss = degree_variance_loss(degrees, torch.tensor([0, 1, 0, 1]), mask, k=3)
    loss.backward()
    assert torch.isfinite(loss) and degrees.grad.abs().sum() > 0
    assert degrees.grad[3, 6:].abs().sum() == 0
