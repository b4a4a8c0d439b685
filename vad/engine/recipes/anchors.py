"""Published numbers the results table puts beside ours: each with its paper, venue and the features it used.

Only numbers checked against the paper or the authors' own release are listed (the authors' README or result
files where they publish one); a method without a checked number for a dataset has no entry for it. Headline
metric per dataset: frame ROC-AUC (%) for UCF-Crime and ShanghaiTech, frame average precision (%) for XD-Violence.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Anchor:
    """One published method and its headline numbers."""

    method: str  # the name papers use
    venue: str  # where it was published
    features: str  # the backbone its numbers come from (numbers with other features are not comparable)
    results: dict[str, float]  # benchmark name -> headline metric in %
    citation: str  # authors, title, venue


ANCHORS: tuple[Anchor, ...] = (
    Anchor("Sultani et al. (MIL ranking)", "CVPR 2018", "C3D", {"ucf-crime": 75.41},
           "W. Sultani, C. Chen, M. Shah. Real-world Anomaly Detection in Surveillance Videos. CVPR 2018"),
    Anchor("RTFM", "ICCV 2021", "I3D (10-crop)", {"ucf-crime": 84.30, "xd-violence": 77.81, "shanghaitech": 97.21},
           "Y. Tian, G. Pang, Y. Chen, R. Singh, J. W. Verjans, G. Carneiro. Weakly-supervised Video Anomaly "
           "Detection with Robust Temporal Feature Magnitude Learning. ICCV 2021"),
    Anchor("UR-DMU", "AAAI 2023", "I3D", {"ucf-crime": 86.97, "xd-violence": 81.66},
           "H. Zhou, J. Yu, W. Yang. Dual Memory Units with Uncertainty Regulation for Weakly Supervised Video "
           "Anomaly Detection. AAAI 2023"),
    Anchor("VadCLIP", "AAAI 2024", "CLIP ViT-B/16", {"ucf-crime": 88.02, "xd-violence": 84.51},
           "P. Wu, X. Zhou, G. Pang, L. Zhou, Q. Yan, P. Wang, Y. Zhang. VadCLIP: Adapting Vision-Language Models "
           "for Weakly Supervised Video Anomaly Detection. AAAI 2024"),
    Anchor("LEGO / EGO fusion (the fusion vadgraph follows)", "ICLR 2025", "as in the paper's own pipeline",
           {"shanghaitech": 97.26},
           "D. Ding, L. Wang, L. Zhu, T. Gedeon, P. Koniusz. LEGO: Learnable Expansion of Graph Operators for "
           "Multi-Modal Feature Fusion. ICLR 2025 (arXiv 2410.01506); 96.37 for MTN fusion in the same comparison"),
)

FOLLOWED_NOTE = ("LEGO (ICLR 2025) and Graph4MM (ICML 2025) are the methods vadgraph follows. LEGO's row is the "
                 "frame AUC its paper reports for EGO fusion on ShanghaiTech (its own features and pipeline, so a "
                 "reference point rather than a like-for-like comparison); Graph4MM reports no video anomaly "
                 "detection number.")


def anchors_for(benchmark: str) -> list[Anchor]:
    """The anchors with a published number on ``benchmark``, in the order above (oldest first)."""
    return [a for a in ANCHORS if benchmark in a.results]
