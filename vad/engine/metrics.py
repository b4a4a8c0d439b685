"""Frame-level VAD metrics as the community reports them (docs/design.md §7): frame ROC-AUC over all test frames,
average precision, AUC on abnormal videos only, false-alarm rate on normal videos, per-class AUC; and what an
operator sees at the threshold: time to detect each event and false alarms, per class too.

A metric that is undefined on the data given (e.g. AUC when every frame has the same label) is ``NaN`` and a
note in :attr:`EvalReport.notes` says why; it never raises.
"""
from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field

import numpy as np

from vad.errors import MetricsError
from vad.names import NORMAL_CLASS


def expand_to_frames(snippet_scores: np.ndarray, num_frames: int, snippet_len: int = 16) -> np.ndarray:
    """Snippet scores ``(N,)`` → frame scores ``(num_frames,)``: each score repeated S times, then truncated or
    padded with the last score to ``num_frames``."""
    scores = np.asarray(snippet_scores, dtype=np.float64).reshape(-1)
    if scores.size == 0:
        raise MetricsError("expand_to_frames: no snippet scores")
    if snippet_len < 1 or num_frames < 1:
        raise MetricsError(f"expand_to_frames: need snippet_len >= 1 and num_frames >= 1, got {snippet_len}, "
                           f"{num_frames}")
    frames = np.repeat(scores, snippet_len)[:num_frames]
    if frames.size < num_frames:
        frames = np.pad(frames, (0, num_frames - frames.size), mode="edge")
    return frames


@dataclass
class EvalReport:
    """Frame-level metrics of one evaluation. AUC/AP in [0, 1]; NaN when undefined (see ``notes``)."""

    auc: float  # ROC-AUC over all frames of all videos, concatenated
    ap: float  # average precision over the same frames (XD-Violence's headline metric)
    auc_abnormal: float  # ROC-AUC over the frames of abnormal videos only
    leak_auc: float  # AUC of normal frames of abnormal videos vs frames of normal videos (0.5 = no shortcut)
    far: float  # false-alarm rate: share of normal videos' frames scored >= threshold
    threshold: float  # the FAR threshold
    per_class_auc: dict[str, float]  # class -> AUC over that class's abnormal videos + all normal videos
    num_videos: int  # videos evaluated
    num_abnormal_videos: int  # videos with at least one abnormal frame
    num_frames: int  # frames evaluated
    num_abnormal_frames: int  # frames labelled 1
    class_counts: dict[str, int] = field(default_factory=dict)  # class -> number of videos
    notes: list[str] = field(default_factory=list)  # why a metric is NaN, if any is
    threshold_source: str = ""  # where the threshold came from (calibrated, given, default)
    time_to_detect_s: dict[str, float] = field(default_factory=dict)  # abnormal video -> seconds; NaN = missed
    median_time_to_detect_s: float = float("nan")  # median over the detected abnormal videos
    missed: int = 0  # abnormal videos with no frame of their events at or above the threshold
    per_class_far: dict[str, float] = field(default_factory=dict)  # Normal: FAR of normal videos; class: FAR of
    # the normal frames (outside the events) of that class's videos
    per_class_time_to_detect_s: dict[str, float] = field(default_factory=dict)  # class -> median seconds
    per_class_missed: dict[str, int] = field(default_factory=dict)  # class -> missed videos

    def to_dict(self) -> dict:
        """JSON-ready dict (NaN → None, since JSON has no NaN)."""
        def clean(v):
            if isinstance(v, float) and math.isnan(v):
                return None
            if isinstance(v, dict):
                return {k: clean(x) for k, x in v.items()}
            return v
        return {k: clean(v) for k, v in asdict(self).items()}

    def format_table(self) -> str:
        """A plain-text table for the terminal."""
        def pct(v: float) -> str:
            return "   n/a" if math.isnan(v) else f"{100 * v:6.2f}"
        lines = [
            (f"videos {self.num_videos} ({self.num_abnormal_videos} abnormal), frames {self.num_frames} "
             f"({self.num_abnormal_frames} abnormal)"),
            f"{'metric':<24}{'value %':>8}",
            f"{'frame AUC':<24}{pct(self.auc):>8}",
            f"{'AP':<24}{pct(self.ap):>8}",
            f"{'AUC (abnormal videos)':<24}{pct(self.auc_abnormal):>8}",
            f"{'leak AUC (50 = none)':<24}{pct(self.leak_auc):>8}",
            f"{f'FAR @ {self.threshold:.4g} (normal)':<24}{pct(self.far):>8}",
            f"{'time to detect, median':<24}{_secs(self.median_time_to_detect_s):>8} s",
            f"{'missed events':<24}{self.missed:>8} of {len(self.time_to_detect_s)}",
        ]
        if self.threshold_source:
            lines.append(f"threshold: {self.threshold_source}")
        if self.per_class_auc or self.per_class_far:
            lines.append(f"{'class':<24}{'AUC %':>8}{'FAR %':>8}{'TTD s':>8}{'missed':>8}{'videos':>8}")
            for cls in dict.fromkeys([*self.per_class_far, *self.per_class_auc]):
                lines.append(f"{cls:<24}{pct(self.per_class_auc.get(cls, float('nan'))):>8}"
                             f"{pct(self.per_class_far.get(cls, float('nan'))):>8}"
                             f"{_secs(self.per_class_time_to_detect_s.get(cls, float('nan'))):>8}"
                             f"{self.per_class_missed.get(cls, 0):>8}{self.class_counts.get(cls, 0):>8}")
        lines += [f"note: {n}" for n in self.notes]
        return "\n".join(lines)


def _secs(v: float) -> str:
    return "   n/a" if math.isnan(v) else f"{v:6.2f}"


def time_to_detect(frame_scores: np.ndarray, labels: np.ndarray, fps: float, threshold: float) -> float:
    """Seconds from the event onset (the first abnormal frame) to the first *abnormal* frame scoring at or above
    ``threshold``; NaN when no abnormal frame does (a miss) or the video has no event.

    ``frame_scores``, ``labels``: ``(T,)``. Alarms before the onset or between events are false alarms, not
    detections; with several events, a detection in a later one counts from the first onset.
    """
    y = np.asarray(labels).reshape(-1).astype(bool)
    if not y.any():
        return float("nan")
    hits = np.flatnonzero(y & (np.asarray(frame_scores, dtype=np.float64).reshape(-1) >= threshold))
    if hits.size == 0:
        return float("nan")
    return float((hits[0] - np.flatnonzero(y)[0]) / (fps if fps > 0 else 1.0))


def _nanmedian(values: Sequence[float]) -> float:
    v = np.asarray([x for x in values if not math.isnan(x)], dtype=np.float64)
    return float(np.median(v)) if v.size else float("nan")


def detection_metrics(ys: Sequence[np.ndarray], ss: Sequence[np.ndarray], names: Sequence[str],
                      classes: Mapping[str, str] | None, fps: Mapping[str, float] | float | None,
                      threshold: float) -> dict:
    """Time to detect (per abnormal video, median overall and per class, misses) and FAR per class.

    ``ys``/``ss``: frame labels and scores ``(T_i,)`` of the videos ``names``. A class's FAR counts the normal
    frames of that class's videos (outside their events); the ``Normal`` class's is the FAR of normal videos.
    """
    ttd: dict[str, float] = {}
    alarms: dict[str, list[np.ndarray]] = {}
    for y, s, name in zip(ys, ss, names):
        cls = NORMAL_CLASS if not y.any() else (classes or {}).get(name, "Anomaly")
        alarms.setdefault(cls, []).append(s[y == 0] >= threshold)
        if y.any():
            rate = fps.get(name, 0.0) if isinstance(fps, Mapping) else (fps or 0.0)
            ttd[name] = time_to_detect(s, y, rate, threshold) if rate > 0 else float("nan")
    per_far = {c: float(np.concatenate(a).mean()) if sum(x.size for x in a) else float("nan")
               for c, a in sorted(alarms.items(), key=lambda kv: (kv[0] != NORMAL_CLASS, kv[0]))}
    by_class: dict[str, list[float]] = {}
    for name, t in ttd.items():
        by_class.setdefault((classes or {}).get(name, "Anomaly"), []).append(t)
    return {"time_to_detect_s": ttd, "median_time_to_detect_s": _nanmedian(list(ttd.values())),
            "missed": sum(math.isnan(t) for t in ttd.values()), "per_class_far": per_far,
            "per_class_time_to_detect_s": {c: _nanmedian(v) for c, v in sorted(by_class.items())},
            "per_class_missed": {c: sum(math.isnan(t) for t in v) for c, v in sorted(by_class.items())}}


def _auc(y: np.ndarray, s: np.ndarray, what: str, notes: list[str]) -> float:
    """ROC-AUC, or NaN with a note when y holds one class only."""
    if y.size == 0 or y.min() == y.max():
        notes.append(f"{what}: undefined, the frames hold only label {int(y[0]) if y.size else 'none'}")
        return float("nan")
    from sklearn.metrics import roc_auc_score  # here, not at the top: scoring needs no sklearn

    return float(roc_auc_score(y, s))


def leak_auc(normal_frames_of_abnormal: Sequence[np.ndarray], normal_videos: Sequence[np.ndarray],
             notes: list[str] | None = None) -> float:
    """AUC of the *normal* frames of abnormal videos (positives) against the frames of normal videos.

    0.5 means the model does not score an abnormal video's normal part any higher than a normal video: it
    localises. Well above 0.5 means it learned *which video* is abnormal, the shortcut of weak labels.
    """
    pos = [np.asarray(s, dtype=np.float64) for s in normal_frames_of_abnormal if len(s)]
    neg = [np.asarray(s, dtype=np.float64) for s in normal_videos if len(s)]
    if not pos or not neg:
        if notes is not None:
            notes.append("leak AUC: undefined, needs normal frames in abnormal videos and normal videos")
        return float("nan")
    p, n = np.concatenate(pos), np.concatenate(neg)
    from sklearn.metrics import roc_auc_score

    return float(roc_auc_score(np.r_[np.ones(p.size), np.zeros(n.size)], np.r_[p, n]))


def _checked_pair(name: str, g: np.ndarray, frame_scores: Mapping[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """One video's ``(labels uint8, scores float64)``, both ``(T,)``; a clear error when they do not fit."""
    if name not in frame_scores:
        raise MetricsError(f"evaluate: no scores for video {name}")
    y = np.asarray(g).reshape(-1)
    s = np.asarray(frame_scores[name], dtype=np.float64).reshape(-1)
    if y.shape != s.shape:
        raise MetricsError(f"evaluate: video {name} has {s.size} frame scores but {y.size} ground-truth frames")
    if not np.isfinite(s).all():
        raise MetricsError(f"evaluate: video {name} has non-finite scores")
    if y.size and not np.isin(y, (0, 1)).all():
        raise MetricsError(f"evaluate: ground truth of video {name} must hold only 0 and 1")
    return y.astype(np.uint8), s


def _checked(frame_scores: Mapping[str, np.ndarray], gt: Mapping[str, np.ndarray]
             ) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Frame labels (uint8) and scores (float64) of each video of ``gt``, in order; MetricsError when unusable."""
    if not gt:
        raise MetricsError("evaluate: no ground-truth videos")
    ys, ss = [], []
    for name, g in gt.items():
        y, s = _checked_pair(name, g, frame_scores)
        ys.append(y)
        ss.append(s)
    return ys, ss


def _per_class_auc(ys: Sequence[np.ndarray], ss: Sequence[np.ndarray], names: Sequence[str],
                   classes: Mapping[str, str], notes: list[str]) -> tuple[dict[str, float], dict[str, int]]:
    """Per class: AUC over that class's abnormal videos + all normal videos; and the video count per class."""
    nor = [i for i, y in enumerate(ys) if not y.any()]
    groups: dict[str, list[int]] = {}
    for i, y in enumerate(ys):
        if y.any():
            if names[i] not in classes:
                raise MetricsError(f"evaluate: no class for abnormal video {names[i]}")
            groups.setdefault(classes[names[i]], []).append(i)
    counts = {NORMAL_CLASS: len(nor), **{c: len(ix) for c, ix in sorted(groups.items())}}
    per_class = {cls: _auc(np.concatenate([ys[i] for i in ix + nor]), np.concatenate([ss[i] for i in ix + nor]),
                           f"AUC ({cls})", notes) for cls, ix in sorted(groups.items())}
    return per_class, counts


def evaluate(frame_scores: Mapping[str, np.ndarray], gt: Mapping[str, np.ndarray],
             classes: Mapping[str, str] | None = None, threshold: float = 0.5,
             fps: Mapping[str, float] | float | None = None, threshold_source: str = "") -> EvalReport:
    """Score the videos of ``gt`` (scores for other videos are ignored).

    Args:
        frame_scores: name → ``(T,)`` frame scores (e.g. from :func:`expand_to_frames`).
        gt: name → ``(T,)`` 0/1 frame labels; a video is abnormal if any frame is 1.
        classes: name → class of each abnormal video, for per-class AUC (skipped when None).
        threshold: score at or above which a frame counts as an alarm, for FAR and time to detect.
        fps: name → frames per second (or one rate for all), for time to detect in seconds; None: not computed.
        threshold_source: where ``threshold`` came from, reported as is.
    """
    ys, ss = _checked(frame_scores, gt)
    abnormal = [bool(y.any()) for y in ys]
    notes: list[str] = []
    y_all, s_all = np.concatenate(ys), np.concatenate(ss)
    auc = _auc(y_all, s_all, "frame AUC", notes)
    if y_all.any():
        from sklearn.metrics import average_precision_score

        ap = float(average_precision_score(y_all, s_all))
    else:
        ap = float("nan")
        notes.append("AP: undefined, no abnormal frames")
    abn = [i for i, a in enumerate(abnormal) if a]
    nor = [i for i, a in enumerate(abnormal) if not a]
    if abn:
        auc_abn = _auc(np.concatenate([ys[i] for i in abn]), np.concatenate([ss[i] for i in abn]),
                       "AUC (abnormal videos)", notes)
    else:
        auc_abn = float("nan")
        notes.append("AUC (abnormal videos): undefined, no abnormal videos")
    if nor:
        far = float((np.concatenate([ss[i] for i in nor]) >= threshold).mean())
    else:
        far = float("nan")
        notes.append("FAR: undefined, no normal videos")
    leak = leak_auc([ss[i][ys[i] == 0] for i in abn], [ss[i] for i in nor], notes)

    names = list(gt)
    per_class, counts = _per_class_auc(ys, ss, names, classes, notes) if classes is not None else ({}, {})
    detection = detection_metrics(ys, ss, names, classes, fps, threshold) if fps is not None else {}
    return EvalReport(auc=auc, ap=ap, auc_abnormal=auc_abn, leak_auc=leak, far=far, threshold=float(threshold),
                      per_class_auc=per_class, num_videos=len(names), num_abnormal_videos=len(abn),
                      num_frames=int(y_all.size), num_abnormal_frames=int(y_all.sum()), class_counts=counts,
                      notes=notes, threshold_source=threshold_source, **detection)
