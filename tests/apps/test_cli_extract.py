import os
import subprocess
import sys

from apps.cli import main
from tests.media import write_video


def _args(ckpt):
    return ["--backbone", "vadgraph-tiny-ViT", "--pretrained", str(ckpt), "--device", "cpu", "--snippet-len", "8"]


def test_extract_good_and_bad_exits_1_naming_bad(tmp_path, tiny_checkpoint, bad_videos, capsys):
    videos = tmp_path / "in"
    videos.mkdir()
    write_video(videos / "ok.mp4")
    os.link(bad_videos["text"], videos / "notes.mp4")
    code = main(["-q", "extract", str(videos), "--out", str(tmp_path / "f")] + _args(tiny_checkpoint))
    err = capsys.readouterr().err
    assert code == 1
    assert "notes.mp4" in err and "ok.mp4" not in err
    assert (tmp_path / "f" / "videos" / "ok.npz").exists()


def test_extract_all_good_exits_0(tmp_path, tiny_checkpoint, capsys):
    video = write_video(tmp_path / "ok.mp4")
    assert main(["-q", "extract", str(video), "--out", str(tmp_path / "f")] + _args(tiny_checkpoint)) == 0
    assert "1 written" in capsys.readouterr().out


def test_missing_weights_exit_2_one_line_no_traceback(tmp_path):
    video = write_video(tmp_path / "ok.mp4")
    proc = subprocess.run(
        [sys.executable, "-m", "apps.cli", "extract", str(video), "--out", str(tmp_path / "f"),
         "--backbone", "vadgraph-tiny-ViT", "--pretrained", str(tmp_path / "missing.safetensors")],
        capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert "checkpoint file not found" in proc.stderr
