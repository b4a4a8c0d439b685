"""Outputs of scoring, for people and for tools: frame-score CSV, segments JSON, score plot, fusion heatmap,
segment thumbnails, and the run's ``summary.csv``. Every file is written atomically.

Figures are built with ``matplotlib.figure.Figure`` directly (Agg canvas, no pyplot state), so they are safe to
make from a web server's worker threads and are freed when dropped.
"""
from __future__ import annotations

import csv
import io
import math
import os
import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from vad.engine.inference import VideoScores
from vad.engine.segments import Segment, SegmentConfig
from vad.io import atomic_path, printable, write_json_atomic, write_text_atomic
from vad.names import SUMMARY_FILE

# the last three columns decide whether a resumed run redoes a video
SUMMARY_COLUMNS = ("name", "path", "status", "max_score", "num_segments", "threshold", "duration_s", "error",
                   "random_backbone", "video_fingerprint", "model", "settings")


def scores_csv_text(scores: VideoScores) -> str:
    """``frame,time_s,score`` rows, one per video frame (times from the container for variable frame rates)."""
    buf = io.StringIO()
    buf.write("frame,time_s,score\n")
    for i, (t, s) in enumerate(zip(scores.frame_times(), scores.frames)):
        buf.write(f"{i},{t:.3f},{s:.6f}\n")
    return buf.getvalue()


def write_scores_csv(path: str | os.PathLike, scores: VideoScores) -> Path:
    """Write the frame scores CSV atomically; returns ``path``."""
    write_text_atomic(path, scores_csv_text(scores))
    return Path(path)


def segment_explanations(scores: VideoScores, segments: Sequence[Segment]) -> list[dict]:
    """Each segment as a dict with what the UI shows: its best prompt and that prompt's mean similarity over the
    segment's snippets (``prompt_similarity``, None without prompts)."""
    out = []
    for seg in segments:
        item = seg.to_dict()
        sims = scores.prompt_similarity
        if sims is not None and len(sims) and seg.prompt_index >= 0:
            first = min(seg.start_frame // scores.snippet_len, len(sims) - 1)
            last = min((seg.end_frame - 1) // scores.snippet_len, len(sims) - 1)
            item["prompt_similarity"] = round(float(np.mean(sims[first:last + 1])), 4)
        else:
            item["prompt_similarity"] = None
        out.append(item)
    return out


def fusion_explanation(weights: dict[str, np.ndarray] | None) -> dict | None:
    """LEGO's learned fusion matrices relative to their uniform start, and the pair that moved most (the level
    pair the model relies on most); None for models without LEGO."""
    if not weights:
        return None
    relative = {name: np.asarray(w, dtype=np.float64) - 1.0 / np.asarray(w).size for name, w in weights.items()}
    strongest = max(relative, key=lambda name: float(np.abs(relative[name]).sum()))
    return {"relative_to_uniform": {n: np.round(r, 4).tolist() for n, r in relative.items()},
            "strongest_pair": strongest}


def segments_document(scores: VideoScores, segments: Sequence[Segment], config: SegmentConfig,
                      video_path: str = "", model: str = "", fusion: dict[str, np.ndarray] | None = None) -> dict:
    """The content of ``NAME.segments.json``: the video, the settings, each segment with its explanation, and
    the LEGO fusion weights the model relies on."""
    return {
        "video": printable(scores.name), "path": printable(str(video_path)), "model": printable(str(model)),
        "fps": scores.fps, "num_frames": len(scores.frames), "snippet_len": scores.snippet_len,
        "duration_s": round(scores.duration_s, 3), "variable_frame_rate": scores.times is not None,
        "threshold": config.threshold, "min_gap_s": config.min_gap_s, "min_length_s": config.min_length_s,
        "max_score": round(float(scores.frames.max()), 4),
        "frames": "0-based, start inclusive, end exclusive",
        "segments": segment_explanations(scores, segments),
        "fusion": fusion_explanation(fusion),
    }


def write_segments_json(path: str | os.PathLike, document: dict) -> Path:
    """Write a :func:`segments_document` atomically; returns ``path``."""
    write_json_atomic(path, document)
    return Path(path)


def score_figure(scores: VideoScores, segments: Sequence[Segment], threshold: float, title: str | None = None,
                 ground_truth: np.ndarray | None = None, threshold_label: str | None = None,
                 subtitle: str | None = None):
    """A matplotlib ``Figure``: the frame-score curve over time, segments shaded and labelled with their best
    prompt, threshold dashed and named (``threshold_label``, e.g. "0.73 (calibrated: 1% false alarms ...)"), and
    the ground-truth abnormal frames ``(T,)`` as a green band when known; ``subtitle`` is a second title line
    (e.g. that the backbone is random-initialised). Text is 10 pt (13.9 px) or larger at the figure's own size
    (12 x 3.6 in at 100 dpi, about the width of a full-width web view)."""
    from matplotlib.figure import Figure

    fps = scores.fps if scores.fps > 0 else 1.0
    t = scores.frame_times()
    fig = Figure(figsize=(12, 3.6), dpi=100, layout="constrained")
    ax = fig.add_subplot()
    if ground_truth is not None:
        gt = np.asarray(ground_truth).reshape(-1)[: len(t)].astype(bool)
        ax.fill_between(t[: len(gt)], -0.02, 1.02, where=gt, color="tab:green", alpha=0.15, lw=0,
                        step="post", label="ground truth (abnormal)")
    for i, seg in enumerate(segments):
        ax.axvspan(seg.start_s, seg.end_s, color="tab:red", alpha=0.18, lw=0,
                   label="abnormal segment" if i == 0 else None)
        if seg.prompt:
            ax.text((seg.start_s + seg.end_s) / 2, 0.97, seg.prompt, ha="center", va="top", fontsize=11,
                    color="darkred", clip_on=True)
    ax.plot(t, scores.frames, color="tab:blue", lw=1.6, label="anomaly score")
    ax.axhline(threshold, color="tab:red", ls="--", lw=1.0, label=f"threshold {threshold_label or f'{threshold:.2f}'}")
    ax.set_xlim(0, max(t[-1], 1.0 / fps) if len(t) else 1)
    ax.set_ylim(-0.02, 1.02)
    ax.set_xlabel("time (s)", fontsize=12)
    ax.set_ylabel("anomaly score", fontsize=12)
    ax.tick_params(labelsize=11)
    ax.set_title(printable(title or f"{scores.name}: {len(segments)} abnormal segment(s)"), fontsize=12)
    if subtitle:
        fig.suptitle(printable(subtitle), fontsize=11, color="#8a6d00", style="italic")
    ax.grid(alpha=0.3)
    ax.legend(loc="upper right", fontsize=10, framealpha=0.8)
    return fig


def save_figure(path: str | os.PathLike, fig) -> Path:
    """Save a figure as PNG atomically; returns ``path``."""
    with atomic_path(path, suffix=".png") as tmp, warnings.catch_warnings():
        warnings.simplefilter("ignore")  # e.g. "Glyph missing from font" for a video name in another script
        fig.savefig(tmp, format="png")
    return Path(path)


def fusion_figure(weights: dict[str, np.ndarray] | None):
    """The learned LEGO fusion matrices A, one heatmap per pair of graphs, or None for variants without LEGO.

    ``weights``: pair name (``"clip*frame"``) → ``(P+1, Q+1)``; cell (p, q) weighs ``R_a^p ⊙ R_b^q``. Shown
    relative to the uniform initialisation, ``A - 1/((P+1)(Q+1))`` (0: unchanged by training), on a colour scale
    symmetric around 0 that ends at the largest ``|value|`` of all pairs.
    """
    if not weights:
        return None
    from matplotlib.figure import Figure

    names = list(weights)
    cols = min(3, len(names))
    rows = math.ceil(len(names) / cols)
    fig = Figure(figsize=(3.2 * cols, 2.9 * rows), dpi=100, layout="constrained")
    mats = [np.asarray(weights[n], dtype=np.float64) for n in names]
    mats = [m - 1.0 / m.size for m in mats]  # LEGO starts every cell at 1/((P+1)(Q+1))
    vmax = max(float(np.abs(m).max()) for m in mats) or 1e-6
    image = None
    for i, (name, mat) in enumerate(zip(names, mats, strict=True)):
        ax = fig.add_subplot(rows, cols, i + 1)
        image = ax.imshow(mat, cmap="RdBu_r", vmin=-vmax, vmax=vmax)
        a, b = (name.split("*", 1) + [""])[:2]
        ax.set_title(name.replace("*", " × "), fontsize=11)
        ax.set_xlabel(f"hops of {b or 'b'} (q)", fontsize=10)
        ax.set_ylabel(f"hops of {a} (p)", fontsize=10)
        ax.set_xticks(range(mat.shape[1]))
        ax.set_yticks(range(mat.shape[0]))
        for (p, q), v in np.ndenumerate(mat):
            ax.text(q, p, f"{v:+.3f}", ha="center", va="center", fontsize=9,
                    color="white" if abs(v) > 0.6 * vmax else "black")
    fig.colorbar(image, ax=fig.axes, shrink=0.8, label="A[p, q] − 1/((P+1)(Q+1))")
    fig.suptitle("relative to the uniform initialisation (0 = unchanged by training)", fontsize=10)
    return fig


def segment_thumbnails(video_path: str | os.PathLike, segments: Sequence[Segment], top: int = 6,
                       short_side: int = 180) -> list[tuple[np.ndarray, str]]:
    """Key frames of the ``top`` segments by peak score: ``(RGB (H, W, 3) uint8, caption)`` per segment."""
    from vad.features.video import open_video

    chosen = sorted(segments, key=lambda s: s.peak_score, reverse=True)[:top]
    if not chosen:
        return []
    with open_video(video_path, short_side=short_side) as source:
        last = max(0, source.info.num_frames - 1)
        frames = source.read([min(s.peak_frame, last) for s in chosen])
    return [(frame, f"{_clock(s.start_s)}–{_clock(s.end_s)} · peak {s.peak_score:.2f}"
             + (f" · {s.prompt}" if s.prompt else "")) for frame, s in zip(frames, chosen, strict=True)]


def _clock(seconds: float) -> str:
    m, s = divmod(max(0.0, seconds), 60)
    return f"{int(m)}:{s:04.1f}"


def read_summary(out_dir: str | os.PathLike) -> dict[str, dict]:
    """Rows of ``OUT/summary.csv`` keyed by video name (empty if there is none or it is unreadable)."""
    path = Path(out_dir) / SUMMARY_FILE
    if not path.exists():
        return {}
    try:
        with path.open(newline="", encoding="utf-8") as fh:
            return {row["name"]: row for row in csv.DictReader(fh) if row.get("name")}
    except (OSError, csv.Error, KeyError, UnicodeDecodeError):
        return {}


def write_summary(out_dir: str | os.PathLike, rows: dict[str, dict]) -> Path:
    """Write ``OUT/summary.csv`` atomically, one row per video in name order."""
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=SUMMARY_COLUMNS, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for name in sorted(rows):
        writer.writerow({k: rows[name].get(k, "") for k in SUMMARY_COLUMNS})
    path = Path(out_dir) / SUMMARY_FILE
    write_text_atomic(path, buf.getvalue())
    return path
