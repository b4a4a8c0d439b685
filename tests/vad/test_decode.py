"""Parallel ordered decoding: batches come back in snippet order, bounded in flight, every source closed, and
a worker's error raised at its batch."""
import threading
import time

import numpy as np
import pytest

from vad.errors import VideoError
from vad.features.decode import auto_decode_workers, decode_plan, decoded_batches


class FakeSource:
    """Frames whose pixel value is the frame index; optionally fails on one index; slow reads shuffle finishing
    order between threads."""

    def __init__(self, log: dict, fail_at: int | None = None) -> None:
        self.log, self.fail_at, self.closed = log, fail_at, False
        with log["lock"]:
            log["opened"].append(self)

    def read(self, indices) -> np.ndarray:
        indices = [int(i) for i in indices]
        with self.log["lock"]:
            self.log["in_flight"] += 1
            self.log["max_in_flight"] = max(self.log["max_in_flight"], self.log["in_flight"])
        try:
            time.sleep(0.002 * (7 - indices[0] % 7))  # later batches often finish first
            if self.fail_at is not None and self.fail_at in indices:
                raise VideoError(f"clip.mp4: decoding failed near frame {self.fail_at}")
            return np.stack([np.full((2, 3, 3), i, np.uint8) for i in indices])
        finally:
            with self.log["lock"]:
                self.log["in_flight"] -= 1

    def close(self) -> None:
        self.closed = True


def _log() -> dict:
    return {"lock": threading.Lock(), "opened": [], "in_flight": 0, "max_in_flight": 0}


@pytest.mark.parametrize("workers, depth", [(0, 0), (1, 2), (3, 1), (4, 0)])
def test_batches_in_order_and_sources_closed(workers, depth):
    log = _log()
    plan = np.arange(60).reshape(20, 3)  # 20 snippets, F = 3
    out = list(decoded_batches(lambda: FakeSource(log), plan, 3, None, workers, depth))
    assert [b[0] for b in out] == [slice(s, min(20, s + 3)) for s in range(0, 20, 3)]
    frames = np.concatenate([b[1] for b in out])  # (20, 3, 2, 3, 3)
    assert np.array_equal(frames[:, :, 0, 0, 0], plan)
    assert 1 <= len(log["opened"]) <= max(workers, 1) and all(s.closed for s in log["opened"])
    assert log["max_in_flight"] <= max(workers, 1)


def test_worker_error_is_raised_and_everything_closed():
    log = _log()
    plan = np.arange(40).reshape(20, 2)
    got = []
    with pytest.raises(VideoError, match="near frame 25"):
        for batch in decoded_batches(lambda: FakeSource(log, fail_at=25), plan, 2, None, 3, 1):
            got.append(batch[0].start)
    assert got == [0, 2, 4, 6, 8, 10]  # every batch before the broken one (snippet 12 holds frame 25)
    assert all(s.closed for s in log["opened"])


def test_early_exit_stops_the_workers():
    log = _log()
    batches = decoded_batches(lambda: FakeSource(log), np.arange(400).reshape(200, 2), 2, None, 3, 2)
    next(batches)
    batches.close()
    assert all(s.closed for s in log["opened"]) and log["in_flight"] == 0
    assert not [t for t in threading.enumerate() if t.name.startswith("vad-decode")]


def test_decode_plan_pairs_each_frame_with_its_successor():
    plan = np.array([[0, 4], [8, 12], [16, 19]])
    assert np.array_equal(decode_plan(plan, 20, motion=False), plan)
    assert np.array_equal(decode_plan(plan, 20, motion=True), [[0, 1, 4, 5], [8, 9, 12, 13], [16, 17, 19, 19]])


def test_auto_workers():
    assert auto_decode_workers("cpu", 16) == 1
    assert auto_decode_workers("cuda", 16) == 8
    assert auto_decode_workers("cuda", 4) == 2
    assert auto_decode_workers("cuda", 1) == 1


def test_overlapping_parallel_runs_restore_opencv_threads():
    """OpenCV's pool is one thread while any parallel run is open and back to its count after the last ends,
    whatever order the runs end in."""
    import cv2

    before = cv2.getNumThreads()
    log = _log()
    plan = np.arange(40).reshape(20, 2)
    a = decoded_batches(lambda: FakeSource(log), plan, 2, None, 2, 1)
    b = decoded_batches(lambda: FakeSource(log), plan, 2, None, 2, 1)
    next(a)
    next(b)
    assert cv2.getNumThreads() == 1
    a.close()
    assert cv2.getNumThreads() == 1  # b still runs
    b.close()
    assert cv2.getNumThreads() == before
