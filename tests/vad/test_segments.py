import numpy as np
import pytest

from vad.engine.segments import (
    SegmentConfig,
    drop_short,
    find_segments,
    merge_runs,
    runs_above,
    segment_prompt,
)
from vad.errors import VadError


def test_runs_above_edges():
    s = np.array([0.9, 0.9, 0.1, 0.5, 0.2, 0.7])
    assert runs_above(s, 0.5) == [(0, 2), (3, 4), (5, 6)]
    assert runs_above(np.zeros(5), 0.5) == []
    assert runs_above(np.ones(4), 0.5) == [(0, 4)]


def test_merge_and_drop():
    assert merge_runs([(0, 2), (4, 6), (20, 21)], min_gap=3) == [(0, 6), (20, 21)]
    assert merge_runs([(0, 2), (4, 6)], min_gap=2) == [(0, 2), (4, 6)]  # gap of 2 is not shorter than 2
    assert drop_short([(0, 6), (20, 21)], min_length=2) == [(0, 6)]


def test_find_segments_times_scores_prompt():
    fps = 10.0
    scores = np.zeros(100)
    scores[20:40] = 0.8
    scores[30] = 0.95
    scores[43:50] = 0.7  # gap of 3 frames (0.3 s) < 1 s: merged
    scores[80:82] = 0.9  # 0.2 s < 0.5 s: dropped
    best = np.full(10, 2)
    best[2:4] = 5  # snippets 2, 3 (frames 20..39) vote for prompt 5
    prompts = ["normal", "a", "b", "c", "d", "fighting"]
    (seg,) = find_segments(scores, fps, SegmentConfig(0.5, 1.0, 0.5), best, snippet_len=10, prompts=prompts)
    assert (seg.start_frame, seg.end_frame) == (20, 50)
    assert seg.start_s == pytest.approx(2.0) and seg.end_s == pytest.approx(5.0)
    assert seg.peak_score == pytest.approx(0.95) and seg.peak_frame == 30
    assert seg.mean_score == pytest.approx(scores[20:50].mean())
    assert seg.prompt == "fighting" and seg.prompt_index == 5
    d = seg.to_dict()
    assert d["start_s"] == 2.0 and d["prompt"] == "fighting"


def test_prompt_tie_goes_to_peak_snippet():
    best = np.array([1, 2, 3, 4])
    assert segment_prompt(best, 4, 0, 16, peak_frame=9) == 3
    assert segment_prompt(None, 4, 0, 16, 0) == -1
    assert segment_prompt(np.array([-1, -1]), 4, 0, 8, 0) == -1


def test_no_prompts_gives_none():
    (seg,) = find_segments(np.ones(30), 15.0, SegmentConfig(0.5, 0, 0))
    assert seg.prompt is None and seg.prompt_index == -1
    assert (seg.start_frame, seg.end_frame) == (0, 30)


def test_bad_config_is_a_user_error():
    with pytest.raises(VadError):
        SegmentConfig(threshold=1.5)
    with pytest.raises(VadError):
        SegmentConfig(min_gap_s=-1)


@pytest.mark.parametrize("seed", range(40))
def test_segments_property(seed):
    """Disjoint, ordered, inside the video; every above-threshold frame not in a dropped short run is covered."""
    rng = np.random.default_rng(seed)
    t = int(rng.integers(1, 300))
    # piecewise-constant curves like real snippet scores, plus some noise
    scores = np.repeat(rng.random(t // 4 + 1), 4)[:t] * 0.8 + rng.random(t) * 0.2
    fps = float(rng.choice([5.0, 15.0, 30.0]))
    cfg = SegmentConfig(float(rng.uniform(0.2, 0.8)), float(rng.uniform(0, 1)), float(rng.uniform(0, 1)))
    segs = find_segments(scores, fps, cfg, rng.integers(1, 5, size=t // 4 + 1), 4, ["n", "a", "b", "c", "d"])
    min_gap, min_len = cfg.frames(fps)
    prev_end = -1
    for s in segs:
        assert 0 <= s.start_frame < s.end_frame <= t
        assert s.start_frame > prev_end if prev_end >= 0 else True
        assert s.end_frame - s.start_frame >= min_len
        assert scores[s.start_frame] >= cfg.threshold and scores[s.end_frame - 1] >= cfg.threshold
        assert s.peak_score == pytest.approx(scores[s.start_frame:s.end_frame].max())
        assert 1 <= s.prompt_index <= 4
        prev_end = s.end_frame
    covered = np.zeros(t, bool)
    for s in segs:
        covered[s.start_frame:s.end_frame] = True
    merged = merge_runs(runs_above(scores, cfg.threshold), min_gap)
    for start, end in merged:
        if end - start >= min_len:
            assert covered[start:end].all()
        else:
            assert not covered[start:end].any()
    assert not (covered & ~np.isin(np.arange(t), np.concatenate(
        [np.arange(a, b) for a, b in merged] or [np.array([], int)]))).any()
