"""Names shared across stages: the normal class, the feature levels and the files a run writes.

One definition each, so a feature directory, a checkpoint and a report always agree on them.
"""
from __future__ import annotations

NORMAL_CLASS = "Normal"  # class name of normal videos (labels CSV, annotations, per-class metrics)
VISUAL_LEVELS: tuple[str, ...] = ("clip", "frame", "patch")  # per-snippet visual feature levels
FEATURE_LEVELS: tuple[str, ...] = VISUAL_LEVELS + ("motion",)  # per-snippet levels a feature file can hold
ALL_LEVELS: tuple[str, ...] = FEATURE_LEVELS + ("text",)  # every level a model can fuse
MANIFEST_FILE = "manifest.json"  # a feature directory's index of videos and settings
TEXT_FILE = "text.npz"  # a feature directory's prompt embeddings
SUMMARY_FILE = "summary.csv"  # a scoring run's one-row-per-video summary
BENCHMARKS: tuple[str, ...] = ("ucf-crime", "xd-violence", "shanghaitech")  # datasets `vad benchmark` reproduces
