"""Motion level: optical-flow summaries separate run / walk / freeze, see direction, and stay finite."""
from __future__ import annotations

from itertools import pairwise

import cv2
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vad.features.motion import MotionConfig, MotionEncoder, motion_dim, motion_layout

EPS = MotionConfig().eps
LOG_EPS = float(np.log(EPS))
LAYOUT = motion_layout(MotionConfig())


def make_clip(speed: float, frames: int = 4, size: tuple[int, int] = (128, 128),
              direction: tuple[float, float] = (1, 0), step: int = 1, seed: int = 0) -> np.ndarray:
    """``(F, H, W, 3)`` uint8: a textured disc moving ``speed`` px per source frame on a textured background.

    Sampled frames are ``step`` source frames apart; the disc is centred in the middle of the clip.
    """
    rng = np.random.default_rng(seed)
    h, w = size

    def texture(sigma: float) -> np.ndarray:
        return cv2.GaussianBlur(rng.uniform(0, 255, (h, w)).astype(np.float32), (0, 0), sigma)

    background, pattern = texture(1.5) * 0.6 + 40, texture(1.0)
    yy, xx = np.mgrid[:h, :w]
    mask = (((yy - h / 2) ** 2 + (xx - w / 2) ** 2) <= (min(h, w) / 6) ** 2).astype(np.float32)
    out = []
    for t in range(frames):
        shift = speed * step * (t - (frames - 1) / 2)
        warp = np.float32([[1, 0, shift * direction[0]], [0, 1, shift * direction[1]]])
        m, p = cv2.warpAffine(mask, warp, (w, h)), cv2.warpAffine(pattern, warp, (w, h))
        gray = np.clip(background * (1 - m) + p * m, 0, 255).astype(np.uint8)
        out.append(np.repeat(gray[..., None], 3, axis=-1))
    return np.stack(out)


def magnitude(vec: np.ndarray) -> np.ndarray:
    """log(eps + [mean, std, p90, p99, max, moving fraction])."""
    return vec[LAYOUT["magnitude"]]


@pytest.fixture(scope="module")
def encoder() -> MotionEncoder:
    return MotionEncoder()


def test_default_dim_and_layout() -> None:
    cfg = MotionConfig()
    assert motion_dim(cfg) == 6 + 2 + 8 + 8 == 24
    assert motion_dim(MotionConfig(grid=3, bins=12)) == 6 + 2 + 12 + 18
    starts = sorted((s.start, s.stop) for s in LAYOUT.values())
    assert starts[0][0] == 0 and all(a[1] == b[0] for a, b in pairwise(starts))


@pytest.mark.parametrize("method", ["dis", "dis_fast", "farneback"])
def test_run_vs_walk_magnitude(method: str) -> None:
    enc = MotionEncoder(MotionConfig(method=method))
    run, walk = magnitude(enc.snippet(make_clip(6.0))), magnitude(enc.snippet(make_clip(1.5)))
    assert np.all(run[:5] > walk[:5] + np.log(2)), (run, walk)  # 4x faster: every speed statistic > 2x
    # 128 px frames -> 64 px: 6 and 1.5 px/frame become 3 and 0.75; p99 sits on the disc
    assert 2.0 < np.exp(run[3]) < 4.0 and 0.5 < np.exp(walk[3]) < 1.0


def test_frozen_vs_slow(encoder: MotionEncoder) -> None:
    frozen_clip = np.repeat(make_clip(0.0, frames=1), 4, axis=0)
    frozen, slow = encoder.snippet(frozen_clip), encoder.snippet(make_clip(0.5))
    np.testing.assert_allclose(magnitude(frozen), LOG_EPS, atol=0.05)
    assert np.all(frozen[LAYOUT["orientation"]] == 0) and np.all(frozen[LAYOUT["mean_flow"]] == 0)
    assert np.all(magnitude(slow)[:5] > LOG_EPS + 2.0), magnitude(slow)
    assert 0.15 < np.exp(magnitude(slow)[3]) < 0.4  # 0.5 px/frame at 128 px = 0.25 px at 64
    assert np.linalg.norm(slow - frozen) > 5.0


@pytest.mark.parametrize("axis", [0, 1])
def test_direction(encoder: MotionEncoder, axis: int) -> None:
    forward = tuple(1.0 if i == axis else 0.0 for i in range(2))
    backward = tuple(-x for x in forward)
    fwd = encoder.snippet(make_clip(3.0, direction=forward))
    bwd = encoder.snippet(make_clip(3.0, direction=backward))
    mean_f, mean_b = fwd[LAYOUT["mean_flow"]], bwd[LAYOUT["mean_flow"]]
    assert mean_f[axis] > 2.0 and mean_b[axis] < -2.0, (mean_f, mean_b)
    assert abs(mean_f[1 - axis]) < mean_f[axis] / 2
    peaks = (int(np.argmax(fwd[LAYOUT["orientation"]])), int(np.argmax(bwd[LAYOUT["orientation"]])))
    assert peaks == ((0, 4) if axis == 0 else (2, 6))  # 8 bins: right, down, left, up = 0, 2, 4, 6
    np.testing.assert_allclose(fwd[LAYOUT["orientation"]].sum(), 1.0, atol=1e-5)
    assert np.all(fwd[LAYOUT["grid"]][axis::2] > 0) and np.all(bwd[LAYOUT["grid"]][axis::2] < 0)


def test_frame_gap_gives_speed_per_source_frame(encoder: MotionEncoder) -> None:
    dense = encoder.snippet(make_clip(1.0))
    sparse = encoder.snippet(make_clip(1.0, step=3), frame_gap=3)
    sparse_raw = encoder.snippet(make_clip(1.0, step=3))
    assert abs(magnitude(sparse)[3] - magnitude(dense)[3]) < 0.25, (magnitude(sparse), magnitude(dense))
    assert magnitude(sparse_raw)[3] - magnitude(sparse)[3] == pytest.approx(np.log(3), abs=0.05)


def test_single_frame_snippets_chain(encoder: MotionEncoder) -> None:
    clip = make_clip(3.0, frames=4)
    alone = encoder.snippet(clip[1:2])
    np.testing.assert_allclose(magnitude(alone), LOG_EPS)  # no pair: the no-motion vector
    with_prev = encoder.snippet(clip[1:2], previous_frame=clip[0])
    assert with_prev.shape == (24,) and with_prev.dtype == np.float32
    assert 1.2 < np.exp(magnitude(with_prev)[3]) < 1.8  # 3 px/frame at 128 px = 1.5 px at 64
    chained = encoder.snippets(clip[:, None])
    assert chained.shape == (4, 24) and chained.dtype == np.float32
    np.testing.assert_array_equal(chained[1], with_prev)
    np.testing.assert_array_equal(chained[0], chained[1])  # first snippet borrows its successor's vector
    pairs = encoder.snippets(clip.reshape(2, 2, *clip.shape[1:]), previous_frame=clip[0])
    np.testing.assert_array_equal(pairs[1], encoder.snippet(clip[2:], previous_frame=clip[1]))


def test_unchained_pairs(encoder: MotionEncoder) -> None:
    slow, fast = make_clip(1.0, frames=2), make_clip(4.0, frames=2, seed=3)
    out = encoder.snippets(np.stack([slow, fast]), chain=False)
    np.testing.assert_array_equal(out[0], encoder.snippet(slow))
    np.testing.assert_array_equal(out[1], encoder.snippet(fast))  # no (slow[-1], fast[0]) pair mixed in
    assert not np.array_equal(out[1], encoder.snippets(np.stack([slow, fast]))[1])
    with pytest.raises(ValueError):
        encoder.snippets(fast[None], previous_frame=slow[-1], chain=False)


@pytest.mark.parametrize("frames", [
    np.zeros((3, 48, 64, 3), np.uint8),  # all black
    np.full((2, 16, 16, 3), 255, np.uint8),  # tiny, saturated
    np.random.default_rng(1).integers(0, 256, (3, 16, 16, 3), dtype=np.uint8),  # tiny noise
    make_clip(2.0, frames=2, size=(16, 24)),  # tiny, moving
])
def test_degenerate_inputs_are_finite(encoder: MotionEncoder, frames: np.ndarray) -> None:
    for prev in (None, frames[-1]):
        vec = encoder.snippet(frames[:1], previous_frame=prev)
        assert vec.shape == (24,) and vec.dtype == np.float32 and np.all(np.isfinite(vec))
    vec = encoder.snippet(frames)
    assert vec.shape == (24,) and np.all(np.isfinite(vec)) and np.all(magnitude(vec) >= LOG_EPS - 1e-6)
    if not frames.any():
        np.testing.assert_allclose(magnitude(vec), LOG_EPS)


@settings(max_examples=15, deadline=None)
@given(st.integers(1, 3), st.integers(16, 40), st.integers(16, 40), st.integers(0, 2**32 - 1))
def test_random_frames_finite(num: int, h: int, w: int, seed: int) -> None:
    frames = np.random.default_rng(seed).integers(0, 256, (2, num, h, w, 3), dtype=np.uint8)
    out = MotionEncoder().snippets(frames)
    assert out.shape == (2, 24) and out.dtype == np.float32 and np.all(np.isfinite(out))


def test_deterministic() -> None:
    clips = np.stack([make_clip(s, seed=i) for i, s in enumerate((0.5, 2.0, 6.0))])
    first = MotionEncoder().snippets(clips)
    again = MotionEncoder().snippets(clips)
    np.testing.assert_array_equal(first, again)
    enc = MotionEncoder()
    enc.snippet(make_clip(9.0, seed=7))  # state from an unrelated call must not leak
    np.testing.assert_array_equal(enc.snippets(clips), first)


def test_independent_of_earlier_frame_sizes() -> None:
    wide = make_clip(2.0, size=(64, 200))
    fresh = MotionEncoder().snippet(wide)
    used = MotionEncoder()
    used.snippet(make_clip(2.0, size=(48, 48)))  # small frames once made OpenCV's DIS coarser for good
    np.testing.assert_array_equal(used.snippet(wide), fresh)


def test_rejects_bad_input(encoder: MotionEncoder) -> None:
    with pytest.raises(ValueError):
        encoder.snippet(np.zeros((2, 16, 16, 3), np.float32))
    with pytest.raises(ValueError):
        encoder.snippet(np.zeros((2, 16, 16), np.uint8))
    with pytest.raises(ValueError):
        encoder.snippet(np.zeros((2, 16, 16, 3), np.uint8), previous_frame=np.zeros((8, 8, 3), np.uint8))
    with pytest.raises(ValueError):
        encoder.snippet(np.zeros((2, 16, 16, 3), np.uint8), frame_gap=0)
    with pytest.raises(ValueError):
        MotionConfig(method="lucas-kanade")
