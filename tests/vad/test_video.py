import numpy as np
import pytest

from tests.media import opencv_doc_video, write_video
from vad.errors import VideoError
from vad.features.video import (
    SnippetConfig,
    decode_size,
    find_videos,
    iter_snippet_frames,
    open_video,
    plan_snippets,
)


def test_plan_covers_every_snippet_inside_its_range():
    plan = plan_snippets(100, SnippetConfig(snippet_len=16, frames_per_snippet=4))
    assert plan.shape == (7, 4)  # ceil(100 / 16)
    for s, row in enumerate(plan):
        lo, hi = s * 16, min(100, (s + 1) * 16)
        assert np.all((row >= lo) & (row < hi))
        assert np.all(np.diff(row) > 0)


def test_plan_single_frame_is_snippet_centre():
    plan = plan_snippets(32, SnippetConfig(16, 1))
    assert plan[:, 0].tolist() == [8, 24]


def test_snippet_config_rejects_more_frames_than_snippet():
    with pytest.raises(ValueError):
        SnippetConfig(snippet_len=4, frames_per_snippet=5)


def test_decode_size_keeps_aspect_and_never_upscales():
    assert decode_size(1920, 1080, 224) == (398, 224)
    assert decode_size(160, 120, 224) == (160, 120)


def test_open_reads_requested_frames_at_reduced_size(video_file):
    with open_video(video_file, short_side=36) as src:
        assert src.info.num_frames == 40
        assert src.info.fps == pytest.approx(15.0)
        frames = src.read([0, 10, 39])
    assert frames.shape == (3, 36, 48, 3) and frames.dtype == np.uint8


def test_snippet_batches_stream_whole_plan(video_file):
    with open_video(video_file, short_side=36) as src:
        plan = plan_snippets(src.info.num_frames, SnippetConfig(8, 2))
        batches = list(iter_snippet_frames(src, plan, batch_snippets=2))
    assert [b[0] for b in batches] == [slice(0, 2), slice(2, 4), slice(4, 5)]
    assert all(frames.shape[1] == 2 for _, frames in batches)


def test_moving_disc_is_where_it_was_drawn(video_file):
    """Decoded content is the real content: the red disc moves left to right."""
    with open_video(video_file) as src:
        first, last = src.read([0, 39])
    def red(f):  # column with most red
        return np.argmax((f[..., 0].astype(int) - f[..., 1]).max(axis=0))
    assert red(first) < 20 and red(last) > 75


@pytest.mark.parametrize("kind,reason", [
    ("random", "not a video"),
    ("empty", "empty file"),
    ("truncated", "truncated"),
    ("text", "holds text"),
    ("audio", "no video stream"),
])
def test_bad_files_get_a_one_line_reason(bad_videos, kind, reason):
    if kind not in bad_videos:
        pytest.skip("ffmpeg absent: cannot make an audio-only file")
    with pytest.raises(VideoError) as err:
        open_video(bad_videos[kind])
    msg = str(err.value)
    assert reason in msg and str(bad_videos[kind]) in msg and "\n" not in msg


def test_missing_and_directory_inputs(tmp_path):
    with pytest.raises(VideoError, match="file not found"):
        open_video(tmp_path / "nope.mp4")
    with pytest.raises(VideoError, match="directory"):
        open_video(tmp_path)


def test_unicode_file_name(tmp_path):
    path = write_video(tmp_path / "vidéo ünïcødé 監視.mp4", num_frames=20)
    with open_video(path) as src:
        assert src.read([0, 19]).shape[0] == 2


def test_truncated_avi_yields_only_surviving_frames(tmp_path):
    """An AVI cut mid-stream either fails clearly or opens with the frames that survived, all decodable."""
    import cv2

    path = tmp_path / "cut.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 15, (64, 48))
    rng = np.random.default_rng(0)
    for _ in range(60):
        writer.write(rng.integers(0, 255, (48, 64, 3), dtype=np.uint8))
    writer.release()
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 3])
    try:
        src = open_video(path)
    except VideoError as err:
        assert "cut.avi" in str(err)
        return
    with src:
        assert 0 < src.info.num_frames < 60
        frames = src.read(list(range(src.info.num_frames)))
    assert frames.shape[0] == src.info.num_frames and frames.std() > 20  # real noise, not blank filler


def test_find_videos_expands_dirs_and_keeps_missing(tmp_path):
    write_video(tmp_path / "a.mp4", num_frames=5)
    (tmp_path / "sub").mkdir()
    write_video(tmp_path / "sub" / "b.mp4", num_frames=5)
    (tmp_path / "readme.txt").write_text("x")
    found = find_videos([tmp_path, tmp_path / "missing.mp4"])
    assert [p.name for p in found] == ["a.mp4", "b.mp4", "missing.mp4"]


def test_real_footage_vtest():
    path = opencv_doc_video("vtest.avi")
    with open_video(path, short_side=64) as src:
        assert src.info.num_frames > 700 and src.info.width == 768
        plan = plan_snippets(src.info.num_frames, SnippetConfig())
        _, frames = next(iter_snippet_frames(src, plan, 4))
    assert frames.shape == (4, 2, 64, 86, 3)  # F = 2 frames per snippet by default
    assert frames.std() > 10  # real, varied content


@pytest.mark.parametrize("short_side", [None, 48])
def test_reopen_reads_the_same_frames_without_a_new_probe(video_file, short_side):
    """A parallel decode worker's twin reader gives the original's frames, at the same size."""
    with open_video(video_file, short_side=short_side) as source:
        twin = source.reopen(threads=1)
        try:
            assert twin.info == source.info and twin.size == source.size
            assert np.array_equal(twin.read([0, 5, 17]), source.read([0, 5, 17]))
        finally:
            twin.close()


def test_joined_stream_reads_in_file_order_with_repeats_and_going_back(tmp_path):
    """Two MPEG-TS pieces joined (timestamps restart): OpenCV reads them in file order. A plan that repeats the
    last frame (a short final snippet) and a read that goes back both work without seeking, which breaks them."""
    import shutil
    import subprocess

    if shutil.which("ffmpeg") is None:
        pytest.skip("ffmpeg absent: cannot make MPEG-TS files")
    pieces = []
    for i, (source, seconds) in enumerate((("testsrc", 2.0), ("testsrc2", 1.4))):
        piece = tmp_path / f"{i}.ts"
        subprocess.run(["ffmpeg", "-loglevel", "error", "-y", "-f", "lavfi", "-i",
                        f"{source}=size=64x48:rate=10:duration={seconds}", "-c:v", "libx264", "-pix_fmt", "yuv420p",
                        str(piece)], check=True, timeout=60)
        pieces.append(piece.read_bytes())
    joined = tmp_path / "joined.ts"
    joined.write_bytes(b"".join(pieces))
    with open_video(joined) as video:
        assert video.info.backend == "opencv" and video.info.num_frames == 34
        frames = video.read([19, 20, 32, 33, 33])
        assert np.array_equal(frames[3], frames[4]) and not np.array_equal(frames[0], frames[1])
        again = video.read([19, 20])  # back: the file is reopened, the same frames come out
        assert np.array_equal(again, frames[:2])
