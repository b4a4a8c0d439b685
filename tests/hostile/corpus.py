"""The hostile corpus, built at test time with ffmpeg and OpenCV (nothing binary is committed).

Each :class:`Case` is one input and what every command must make of it: ``ok`` (a correct result) or ``fail``
(a one-line error naming it, the batch going on). Videos are checked by ``extract``, ``score`` and the web upload;
feature directories, labels, annotations and model directories by ``train`` and ``eval``.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tests.media import write_video
from vad.models.checkpoint import TEXT_KEY  # the prompt embeddings a model directory stores beside the weights

FFMPEG = shutil.which("ffmpeg")


@dataclass(frozen=True)
class Case:
    """One hostile input: its id, the file it lives in, the expected outcome and why."""

    id: str
    path: Path
    expect: str  # "ok" | "fail"
    why: str = ""
    web: bool = True  # also uploaded to the web UI (links, folders and pipes cannot be uploaded)


def _ffmpeg(out: Path, *args: str) -> Path:
    subprocess.run([FFMPEG, "-loglevel", "error", "-y", *args, str(out)], check=True, timeout=60)
    return out


def _src(size: str = "64x48", rate: int = 10, seconds: float = 1.6) -> list[str]:
    return ["-f", "lavfi", "-i", f"testsrc=size={size}:rate={rate}:duration={seconds}"]


X264 = ["-c:v", "libx264", "-pix_fmt", "yuv420p"]
Maker = Callable[[Path, Path, Path], object]  # (path to write, corpus folder, the baseline video)


def _copy_good(p: Path, _root: Path, good: Path) -> None:
    shutil.copy(good, p)


def _truncated_mp4(p: Path, root: Path, _good: Path) -> None:
    whole = _ffmpeg(root / ".t.mp4", *_src(), *X264)
    p.write_bytes(whole.read_bytes()[:1500])
    whole.unlink()


def _joined_ts(p: Path, root: Path, _good: Path) -> None:
    """Two MPEG-TS recordings joined with ``cat``: the timestamps restart halfway (decord would interleave them)."""
    first = _ffmpeg(root / ".a.ts", *_src(seconds=2), *X264)
    second = _ffmpeg(root / ".b.ts", "-f", "lavfi", "-i", "testsrc2=size=64x48:rate=10:duration=2", *X264)
    p.write_bytes(first.read_bytes() + second.read_bytes())
    first.unlink()
    second.unlink()


def _loop(p: Path, root: Path, _good: Path) -> None:
    p.symlink_to("loop_b.mp4")
    (root / "loop_b.mp4").symlink_to(p.name)


VIDEO_SPECS: list[tuple[str, str, str, str, Maker | None, bool]] = [
    # (id, file name, expect, why, how to make it, uploaded to the web UI too)
    # valid but unusual: each must give a correct result
    ("tiny16-h264", "tiny16_h264.mp4", "ok", "16x16 H.264 (decord cannot read it: OpenCV fallback)",
     lambda p, r, g: _ffmpeg(p, *_src("16x16"), *X264), True),
    ("tiny16-mpeg4", "tiny16_mpeg4.mp4", "ok", "16x16 MPEG-4 part 2",
     lambda p, r, g: _ffmpeg(p, *_src("16x16"), "-c:v", "mpeg4"), True),
    ("odd-dims", "odd_dims.mp4", "ok", "15x17, 4:4:4",
     lambda p, r, g: _ffmpeg(p, *_src("15x17"), "-c:v", "libx264", "-pix_fmt", "yuv444p"), True),
    ("wide", "wide.mp4", "ok", "320x8 strip",
     lambda p, r, g: _ffmpeg(p, *_src("320x8"), "-c:v", "libx264", "-pix_fmt", "yuv444p"), True),
    ("vp9-webm", "vp9.webm", "ok", "VP9 in WebM", lambda p, r, g: _ffmpeg(p, *_src(), "-c:v", "libvpx-vp9"), True),
    ("mjpeg-avi", "mjpeg.avi", "ok", "MJPEG in AVI", lambda p, r, g: _ffmpeg(p, *_src(), "-c:v", "mjpeg"), True),
    ("gray-ffv1", "gray.mkv", "ok", "grayscale FFV1 in Matroska",
     lambda p, r, g: _ffmpeg(p, *_src(), "-c:v", "ffv1", "-pix_fmt", "gray"), True),
    ("ten-bit", "tenbit.mp4", "ok", "10-bit H.264",
     lambda p, r, g: _ffmpeg(p, *_src(), "-c:v", "libx264", "-pix_fmt", "yuv420p10le"), True),
    ("rotated", "rotated.mp4", "ok", "rotation metadata",
     lambda p, r, g: _ffmpeg(p, *_src(), *X264, "-metadata:s:v", "rotate=90"), True),
    ("one-frame", "one_frame.mp4", "ok", "a single frame", lambda p, r, g: _ffmpeg(p, *_src(seconds=0.1), *X264),
     True),
    ("vfr", "vfr.mp4", "ok", "variable frame rate: 30 fps for 2 s, then 7.5 fps",
     lambda p, r, g: _ffmpeg(p, "-f", "lavfi", "-i", "testsrc=size=64x48:rate=30:duration=4,"
                             "setpts='if(lt(T,2),PTS,2/TB+(PTS-2/TB)*4)'", "-fps_mode", "vfr", *X264), True),
    ("joined-ts", "joined.ts", "ok", "two MPEG-TS files joined: timestamps restart (read in file order)",
     _joined_ts, True),
    *[(f"named-{stem}", f"{stem}.mp4", "ok", f"a good video called {stem}.mp4",
       lambda p, r, g, s=stem: write_video(p, num_frames=16, seed=len(s)), True)
      for stem in ("text", "manifest", "summary", "videos", "config")],  # the run's own file names
    ("unicode-name", "vidéo 日本 #1.mp4", "ok", "non-ASCII name with spaces", _copy_good, True),
    ("non-utf8-name", os.fsdecode(b"bad\xff\xfename.mp4"), "ok", "file name that is not UTF-8", _copy_good, False),
    ("hidden-name", ".hidden.mp4", "ok", "a dot file", _copy_good, True),
    ("clash-first", "clash.avi", "ok", "first of two files with one stem", _copy_good, True),
    ("clash-second", "clash.mp4", "fail", "second of two files with one stem: named with the first", _copy_good,
     False),
    ("part-name", "x.part.mp4", "ok", "looks like a temp file", _copy_good, True),
    # broken: each must be a one-line failure naming it, and the others go on
    ("empty", "empty.mp4", "fail", "0 bytes", lambda p, r, g: p.write_bytes(b""), True),
    ("random", "random.mp4", "fail", "random bytes",
     lambda p, r, g: p.write_bytes(np.random.default_rng(1).bytes(4096)), True),
    ("text-file", "notes.mp4", "fail", "a text file", lambda p, r, g: p.write_text("not a video\n" * 40), True),
    ("truncated-mp4", "truncated.mp4", "fail", "MP4 cut short (no moov)", _truncated_mp4, True),
    ("truncated-avi", "cut_short.avi", "fail", "AVI cut short",
     lambda p, r, g: p.write_bytes((r / "mjpeg.avi").read_bytes()[:4000]), True),
    ("ftyp-only", "header_only.mp4", "fail", "an MP4 signature and nothing else",
     lambda p, r, g: p.write_bytes(b"\x00\x00\x00\x18ftypisom\x00\x00\x02\x00isomiso2" + b"\x00" * 64), True),
    ("png-as-mp4", "image.mp4", "fail", "a PNG renamed .mp4",
     lambda p, r, g: _ffmpeg(r / ".i.png", *_src(), "-frames:v", "1").rename(p), True),
    ("audio-only", "audio_only.mp4", "fail", "no video stream",
     lambda p, r, g: _ffmpeg(r / ".a.m4a", "-f", "lavfi", "-i", "sine=frequency=440:duration=1").rename(p), True),
    ("zero-frames", "zero_frames.mp4", "fail", "a video track without frames",
     lambda p, r, g: _ffmpeg(p, *_src(), "-frames:v", "0", *X264), True),
    ("newline-name", "bad\nname.mp4", "fail", "bad content and a line break in its name",
     lambda p, r, g: p.write_text("still not a video\n"), False),
    ("dangling-link", "dangling.mp4", "fail", "symlink to nothing", lambda p, r, g: p.symlink_to("missing.mp4"),
     False),
    ("link-loop", "loop_a.mp4", "fail", "symlink loop (loop_b.mp4 is its other half: the same file)", _loop, False),
    ("dir-as-video", "folder.mp4", "fail", "a directory named like a video", lambda p, r, g: p.mkdir(), False),
    ("fifo", "pipe.mp4", "fail", "a named pipe (opening it would block)", lambda p, r, g: os.mkfifo(p), False),
]
VIDEO_CASE_IDS = ["baseline"] + [spec[0] for spec in VIDEO_SPECS]
VIDEO_WEB_IDS = ["baseline"] + [spec[0] for spec in VIDEO_SPECS if spec[5]]  # those a browser can upload


def build_videos(root: Path) -> list[Case]:
    """Write the video corpus into ``root`` (one flat folder); the cases in :data:`VIDEO_CASE_IDS` order."""
    root.mkdir(parents=True, exist_ok=True)
    good = write_video(root / "baseline.mp4", num_frames=24, seed=1)
    cases = [Case("baseline", good, "ok", "an ordinary mp4v file")]
    for case_id, name, expect, why, make, web in VIDEO_SPECS:
        make(root / name, root, good)
        cases.append(Case(case_id, root / name, expect, why, web))
    return cases


def _empty_dir(tmp: Path) -> Path:
    (tmp / "nothing_here").mkdir()
    return tmp / "nothing_here"


NAMED_PATHS: dict[str, Callable[[Path, Path], Path]] = {
    # case -> the path named on the `vad score` / `vad extract` command line, given (corpus folder, a temp folder);
    # each must get its own `vad: failed:` line (exit 1), beside a good video that is scored
    "dangling-link": lambda corpus, tmp: corpus / "dangling.mp4",
    "link-loop": lambda corpus, tmp: corpus / "loop_a.mp4",
    "dir-as-video": lambda corpus, tmp: corpus / "folder.mp4",
    "fifo": lambda corpus, tmp: corpus / "pipe.mp4",
    "absent": lambda corpus, tmp: tmp / "absent.mp4",
    "empty-dir": lambda corpus, tmp: _empty_dir(tmp),
    "glob-no-match": lambda corpus, tmp: tmp / "no_match_*.mp4",
}

STALE_PARTS = {  # case -> (temp file found in the output folder, {pid}: a live process's id; removed by the next run)
    "dead-run": (".a.scores.csv.999999999.xyz0ab12.csv.part", True),
    "no-pid-name": (".a.png.abc123.png.part", True),  # the name an older version gave its temp files
    "live-run": (".a.png.{pid}.12345678.png.part", False),  # another run writing there now (an all-digit random part)
    "other-dot-file": (".notes.part.txt.bak", False),  # not a temp file of ours: left alone
    "no-pid-number": (".a.png.20240101123456.x1y2z3w4.png.part", False),  # a number no pid can be: left alone, no crash
}

CLIP_TEMP_NAMES = {  # a live session's clip folder (maybe the user's current directory) -> removed at its start?
    ".alert-20261127-1.999999999.k2j4m5n6.part.mp4": True,  # a killed session's half-written clip
    ".alert-20261127-2.{pid}.k2j4m5n6.part.mp4": False,  # a running session's
    ".alert-x.20240101123456.k2j4m5n6.part.mp4": False,  # a number that is no pid
    ".Movie.2019.1080p.part.mkv": False,  # the user's own files
    ".todo.part": False,
    ".alert-notes.part.mp4": False,
}

RESUME_CHANGES = {  # what changed since outputs were written to the folder -> the note `vad score` gives (None: kept)
    "nothing": None,
    "model": "a different model",
    "settings": "different settings",
    "content": "different video content",
}


# ------------------------------------------------------------------------------------------- feature files


PEER_NAMES = [f"Abuse{i:03d}_x264" for i in range(4)] + [f"Normal_Videos_{i:03d}_x264" for i in range(6)]
PEER_BAD_MEMBERS = {  # case -> (member of rtfm/bad.list, what it holds, words its `vad: failed:` line must have)
    "nan": ("Abuse900_x264_i3d.npy", "NaN everywhere", "NaN or Inf"),
    "inf": ("Abuse901_x264_i3d.npy", "Inf everywhere", "NaN or Inf"),
    "2d": ("Abuse902_x264_i3d.npy", "2-D (T, D), not RTFM's (T, crops, D)", "2-D"),
    "missing": ("Abuse903_x264_i3d.npy", "listed but not there", "not found"),
    "garbage": ("Abuse904_x264_i3d.npy", "an .npy signature, then garbage", "not a readable .npy"),
    "complex": ("Abuse905_x264_i3d.npy", "complex numbers", "real numbers"),
}
PEER_FORMATS = ("rtfm", "urdmu", "vadclip")  # clean sets: the default model trains and evaluates on each
PEER_UNUSABLE = {  # `vad train --features` on these: exit 2, one line with each of the words
    "rtfm-2d-only": ("Abuse902_x264_i3d.npy", "2-D", "--format urdmu"),
    "rtfm-non-utf8-list": ("latin1.list:2", "not a UTF-8"),
    "npy-as-list": ("validation",),
}


def write_peer_corpus(root: Path, dim: int = 16, snippets: int = 12) -> dict[str, Path]:
    """Peer-format feature sets: a clean one per format, and RTFM lists with bad members."""
    rng = np.random.default_rng(0)
    names = PEER_NAMES

    def feats(*shape: int) -> np.ndarray:
        return rng.normal(size=shape).astype(np.float32)

    out: dict[str, Path] = {}
    rtfm = root / "rtfm"
    rtfm.mkdir(parents=True)
    for n in names:
        np.save(rtfm / f"{n}_i3d.npy", feats(snippets, 3, dim))
    out["rtfm"] = _lines(rtfm / "train.list", [f"{n}_i3d.npy" for n in names])
    urdmu = root / "urdmu"
    urdmu.mkdir()
    for n in names:
        for k in range(2):
            np.save(urdmu / f"{n}__{k}.npy", feats(snippets, dim))
    out["urdmu"] = _lines(urdmu / "train.list", [f"{n}__{k}.npy" for n in names for k in range(2)])
    out["vadclip"] = urdmu / "train.csv"  # BOM, semicolons, CRLF: all fine
    out["vadclip"].write_bytes(("\ufeffpath;label\r\n" + "".join(
        f"{n}__{k}.npy;{'Normal' if n.startswith('Normal') else 'Abuse'}\r\n" for n in names for k in range(2)))
        .encode("utf-8"))
    bad = {"nan": np.full((snippets, 3, dim), np.nan, np.float32), "2d": feats(snippets, dim),
           "inf": np.full((snippets, 3, dim), np.inf, np.float32),
           "complex": (feats(snippets, 3, dim) * 1j).astype(np.complex64)}
    for case, array in bad.items():
        np.save(rtfm / PEER_BAD_MEMBERS[case][0], array)
    (rtfm / PEER_BAD_MEMBERS["garbage"][0]).write_bytes(b"\x93NUMPY garbage")  # "missing" is listed, never made
    members = [member for member, _, _ in PEER_BAD_MEMBERS.values()]
    out["rtfm-bad-members"] = _lines(rtfm / "bad.list", [f"{n}_i3d.npy" for n in names] + members)
    out["rtfm-2d-only"] = _lines(rtfm / "flat.list", ["Abuse902_x264_i3d.npy"])
    out["rtfm-non-utf8-list"] = rtfm / "latin1.list"
    out["rtfm-non-utf8-list"].write_bytes("Abuse000_x264_i3d.npy\nNormal_é.npy\n".encode("latin-1"))
    out["npy-as-list"] = rtfm / "Abuse000_x264_i3d.npy"  # one file given directly: a list of one (not labelled both)
    return out


def _lines(path: Path, lines: list[str]) -> Path:
    path.write_text("\n".join(lines) + "\n")
    return path


def _old_layout(dst: Path) -> None:
    for v in (dst / "videos").glob("*.npz"):
        v.rename(dst / v.name)
    (dst / "videos").rmdir()


def _emptied(dst: Path) -> None:
    shutil.rmtree(dst)
    dst.mkdir()


def _video(i: int) -> Callable[[Path], Path]:
    return lambda dst: sorted((dst / "videos").glob("*.npz"))[i]


def _nan_row(a: np.ndarray) -> np.ndarray:
    return np.where(np.arange(a.shape[0])[:, None] == 1, np.nan, a)


FEATURE_DAMAGE: dict[str, tuple[int, Callable[[Path], object]]] = {
    # how -> (exit code of `vad train` on it: 1 the rest trains and that video is named, 2 unusable; damage)
    "nan-video": (1, lambda d: _rewrite_npz(_video(0)(d), clip=_nan_row)),
    "inf-video": (1, lambda d: _rewrite_npz(_video(1)(d), frame=lambda a: np.full_like(a, np.inf))),
    "truncated-video": (1, lambda d: _video(2)(d).write_bytes(_video(2)(d).read_bytes()[:300])),
    "wrong-width-video": (1, lambda d: _rewrite_npz(_video(3)(d), clip=lambda a: a[:, :-1],
                                                    frame=lambda a: a[..., :-1], patch=lambda a: a[..., :-1])),
    "old-layout": (0, _old_layout),
    "manifest-list": (2, lambda d: (d / "manifest.json").write_text("[1, 2, 3]")),
    "manifest-corrupt": (2, lambda d: (d / "manifest.json").write_text('{"videos": {')),
    "manifest-non-utf8": (2, lambda d: (d / "manifest.json").write_bytes(b'{"videos": {}, "backbone": "\xff"}')),
    "text-missing": (2, lambda d: (d / "text.npz").unlink()),
    "text-wrong-width": (2, lambda d: _rewrite_npz(d / "text.npz", embeddings=lambda a: a[:, :-3])),
    "text-too-many": (2, lambda d: _rewrite_npz(d / "text.npz", embeddings=lambda a: np.concatenate([a, a[:2]]))),
    "text-nan": (2, lambda d: _rewrite_npz(d / "text.npz", embeddings=lambda a: a * np.nan)),
    "empty-dir": (2, _emptied),
}


def damage_feature_dir(src: Path, dst: Path, how: str) -> Path:
    """A copy of the ``vad extract`` directory ``src`` damaged one way (see :data:`FEATURE_DAMAGE`)."""
    shutil.copytree(src, dst)
    FEATURE_DAMAGE[how][1](dst)
    return dst


def _rewrite_npz(path: Path, **edits: Callable[[np.ndarray], np.ndarray]) -> None:
    with np.load(path, allow_pickle=False) as data:
        arrays = {k: data[k] for k in data.files}
    for key, fn in edits.items():
        arrays[key] = fn(arrays[key])
    with open(path, "wb") as fh:
        np.savez(fh, **arrays)


# ----------------------------------------------------------------------------------- labels and annotations

LABELS = {  # case -> (bytes of labels.csv given rows "name,label,split" of the real videos, expected exit)
    "bom": (lambda rows: b"\xef\xbb\xbf" + _csv(rows), 0),
    "semicolons": (lambda rows: _csv(rows, ";"), 0),
    "tabs-crlf": (lambda rows: _csv(rows, "\t").replace(b"\n", b"\r\n"), 0),
    "non-utf8": (lambda rows: _csv(rows).replace(b"name,label", b"name,label", 1) + b"caf\xe9,1,train\n", 2),
    "short-row": (lambda rows: _csv(rows) + b"lonely\n", 2),
    "label-2": (lambda rows: _csv(rows) + b"extra,2,train\n", 2),
    "label-word": (lambda rows: _csv(rows) + b"extra,yes,train\n", 2),
    "duplicate": (lambda rows: _csv(rows + rows[:1]), 2),
    "unknown-split": (lambda rows: _csv(rows) + b"extra,1,holdout\n", 2),
    "nul-byte": (lambda rows: _csv(rows) + b"ex\x00tra,1,train\n", 2),
    "header-only": (lambda rows: b"name,label,split\n", 2),
    "empty": (lambda rows: b"", 2),
    "no-label-column": (lambda rows: b"name,cls\na,1\n", 2),
}


def _csv(rows: list[tuple[str, int, str]], sep: str = ",") -> bytes:
    return ("\n".join([sep.join(("name", "label", "split"))] + [sep.join((n, str(lbl), s)) for n, lbl, s in rows])
            + "\n").encode("utf-8")


ANNOTATIONS = {  # case -> (text appended to a valid annotation file, expected exit of `vad eval`)
    "non-utf8": (b"Abuse\xff_x264.mp4  Abuse  10  20  -1  -1\n", 2),
    "short-line": (b"Abuse001_x264.mp4  Abuse\n", 2),
    "not-integers": (b"Abuse001_x264.mp4  Abuse  ten  20  -1  -1\n", 2),
    "backwards-window": (b"Abuse001_x264.mp4  Abuse  30  20  -1  -1\n", 2),
}


# ------------------------------------------------------------------------------------------ model directories



def _nan_into(tensors: dict, key: str) -> None:
    tensors[key] = tensors[key].clone()
    tensors[key].view(-1)[0] = float("nan")


def _first_weight(tensors: dict) -> str:
    """A floating-point model weight (not the prompt embeddings)."""
    return next(k for k, v in tensors.items() if k != TEXT_KEY and v.is_floating_point() and v.numel() > 1)


TENSOR_DAMAGE = {  # how -> edit of model.safetensors' tensors (in place)
    "text-missing": lambda t: t.pop(TEXT_KEY),
    "text-wrong-width": lambda t: t.update({TEXT_KEY: t[TEXT_KEY][:, :-2].contiguous()}),
    "text-nan": lambda t: _nan_into(t, TEXT_KEY),
    "weight-nan": lambda t: _nan_into(t, _first_weight(t)),
}


def damage_model_dir(src: Path, dst: Path, how: str) -> Path:
    """A copy of the model directory ``src`` damaged one way (see :data:`MODEL_DAMAGE`)."""
    from safetensors.torch import load_file, save_file

    shutil.copytree(src, dst)
    config, weights = dst / "config.json", dst / "model.safetensors"
    info = json.loads(config.read_text())
    if how in ("hidden-abc", "heads-0", "unknown-level", "levels-string", "dropout-inf"):
        model = info["model"]
        {"hidden-abc": lambda: model.update(hidden="abc"), "heads-0": lambda: model["hop"].update(heads=0),
         "unknown-level": lambda: model.update(levels=["clip", "sound"]),
         "levels-string": lambda: model.update(levels="clip"),
         "dropout-inf": lambda: model.update(dropout=1e999)}[how]()
        config.write_text(json.dumps(info))
    elif how == "config-list":
        config.write_text("[]")
    elif how == "config-non-utf8":
        config.write_bytes(b'{"model": "\xff"}')
    elif how == "more-prompts":
        info["prompts"] = info["prompts"] + ["extra"]
        config.write_text(json.dumps(info))
    elif how in TENSOR_DAMAGE:
        tensors = load_file(str(weights))
        TENSOR_DAMAGE[how](tensors)
        save_file(tensors, str(weights))
    elif how == "truncated-weights":
        weights.write_bytes(weights.read_bytes()[:200])
    elif how == "backbone-weights-gone":
        info["backbone"].update(weights="./nowhere/tiny.safetensors", weights_abs="/nonexistent/tiny.safetensors")
        config.write_text(json.dumps(info))
    else:
        raise ValueError(how)
    return dst


MODEL_DAMAGE = ("hidden-abc", "heads-0", "unknown-level", "levels-string", "dropout-inf", "config-list",
                "config-non-utf8", "more-prompts", "text-missing", "text-wrong-width", "text-nan", "weight-nan",
                "truncated-weights", "backbone-weights-gone")
