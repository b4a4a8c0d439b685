"""Tests for fusion/windows.py: window layout over long videos and gathering."""

from __future__ import annotations

import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from fusion.windows import gather_windows, sample_lengths, window_layout


@settings(max_examples=25, deadline=None)
@given(
    lengths=st.lists(st.integers(0, 300), min_size=1, max_size=3),
    window=st.integers(2, 64),
    overlap_frac=st.floats(0.0, 0.95),
    extra=st.integers(0, 20),
)
def test_every_real_node_is_inside_its_owner_window(
    lengths: list[int], window: int, overlap_frac: float, extra: int
) -> None:
    overlap = min(int(window * overlap_frac), window - 1)
    n = max(lengths) + extra
    if n == 0:
        return
    layout = window_layout(torch.tensor(lengths), n, window, overlap)
    stride = window - overlap
    for b, length in enumerate(lengths):
        count = int(layout.counts[b])
        expected = 1 if length <= layout.width else -(-(length - layout.width) // stride) + 1
        assert count == expected  # linear in the length
        owner = layout.owner[b]
        assert (owner[length:] == -1).all() and (owner[:length] >= 0).all() and (owner[:length] < count).all()
        start = layout.starts[b, owner[:length]]
        position = torch.arange(length)
        assert ((start <= position) & (position < start + layout.width)).all()
        assert (layout.starts[b, :count] >= 0).all()
        assert (layout.starts[b, :count] + layout.width <= max(length, layout.width)).all()


def test_layout_of_a_sample_does_not_depend_on_batch_padding() -> None:
    alone = window_layout(torch.tensor([70]), 70, 16, 4)
    padded = window_layout(torch.tensor([70, 200]), 200, 16, 4)
    count = int(alone.counts[0])
    assert torch.equal(alone.starts[0], padded.starts[0, :count])
    assert torch.equal(alone.owner[0], padded.owner[0, :70])


def test_owner_is_the_window_with_the_nearest_centre() -> None:
    layout = window_layout(torch.tensor([50]), 50, 20, 10)  # starts 0, 10, 20, 30
    assert layout.starts[0].tolist() == [0, 10, 20, 30]
    centers = layout.starts[0].double() + 9.5
    for i in range(50):
        distance = (centers - i).abs()
        assert distance[layout.owner[0, i]] == distance.min()


def test_sample_lengths_use_the_last_real_node() -> None:
    mask = torch.tensor([[True, True, False, False], [True, False, True, False], [False] * 4])
    assert sample_lengths(mask, 3, 4, mask.device).tolist() == [2, 3, 0]
    assert sample_lengths(None, 2, 4, mask.device).tolist() == [4, 4]


def test_gather_windows_cuts_the_right_rows() -> None:
    x = torch.arange(2 * 10 * 3).view(2, 10, 3)
    out = gather_windows(x, torch.tensor([0, 1]), torch.tensor([2, 5]), 4)
    assert out.shape == (2, 4, 3)
    assert torch.equal(out[0], x[0, 2:6]) and torch.equal(out[1], x[1, 5:9])
