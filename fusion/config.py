"""``LEGOConfig``: every knob of the LEGO graph encoder, one frozen dataclass threaded through the package."""

from __future__ import annotations

from dataclasses import dataclass

LEVELS = ("clip", "frame", "patch", "text", "motion")  # the feature levels a relationship graph can be built from
KERNELS = ("cosine", "rbf")
NORMALIZATIONS = ("sym", "row", "softmax", "none")
SET_AGGREGATES = ("mean", "aligned", "chamfer")
MODES = ("auto", "dense", "windowed")


@dataclass(frozen=True)
class LEGOConfig:
    """Configuration of :class:`fusion.LEGOGraphEncoder` and :class:`fusion.LEGOFusion`.

    Hop orders are named ``P`` and ``Q`` as in the paper (G = sum_p sum_q A_pq R_a^p * R_b^q); they are
    unrelated to the patch dimension ``P`` of the shape legend.
    """

    # levels the model fuses; pairs (and their A matrices) are built from these
    levels: tuple[str, ...] = LEVELS  # levels the model fuses; pairs (each with its A) come from these
    in_dim: int = 512  # D: width of the node features x that G propagates
    out_dim: int = 512  # D_out: width of the node representations H = G X W
    P: int = 2  # highest graph power of the first graph of a pair
    Q: int = 2  # highest graph power of the second graph of a pair
    kernel: str = "cosine"  # similarity for the clip and text levels: "cosine" or "rbf"
    rbf_gamma: float | None = None  # RBF exp(-gamma |xi-xj|^2); None = 1 / mean squared distance per graph
    normalize: str = "sym"  # graph normalisation before powers: "sym" | "row" | "softmax" | "none"
    frame_aggregate: str = "mean"  # frame similarities -> snippet pairs: "mean" | "aligned" | "chamfer"
    patch_aggregate: str = "aligned"  # patch similarities -> snippet pairs: "mean" | "aligned" | "chamfer"
    text_temperature: float = 0.01  # softmax temperature of the snippet-to-prompt profile (CLIP: 1/100)
    scale_by_size: bool = True  # multiply powers p >= 1 by the real node count: Hadamard terms are O(1)
    train_pair_sampling: bool = True  # training: one random pair per forward (paper); False: mean of pairs
    top_k: int = 8  # k: neighbours of each node kept from the fused graph (self excluded)
    propagate: bool = True  # compute H = rownorm(G) X W (False: nodes are zeros; use the relation read-out only)
    relation_k: int = 4  # k of the "mean of the k strongest relations" read-out (fusion.relation_readout)
    mode: str = "auto"  # "dense", "windowed", or "auto" (dense iff N <= window_size)
    window_size: int = 256  # W: nodes per window in windowed mode
    window_overlap: int = 64  # nodes shared by consecutive windows (stride = W - overlap)
    window_batch: int = 4  # windows computed at once in windowed mode (bounds memory; small stays in cache)
    eps: float = 1e-8  # guard for divisions by degrees and norms

    def __post_init__(self) -> None:
        if not self.levels or len(set(self.levels)) != len(self.levels):
            raise ValueError(f"levels must be non-empty and distinct, got {self.levels}")
        unknown = [name for name in self.levels if name not in LEVELS]
        if unknown:
            raise ValueError(f"unknown levels {unknown}; choose from {LEVELS}")
        if self.P < 0 or self.Q < 0:
            raise ValueError(f"P and Q must be >= 0, got P={self.P}, Q={self.Q}")
        _check_choice("kernel", self.kernel, KERNELS)
        _check_choice("normalize", self.normalize, NORMALIZATIONS)
        _check_choice("frame_aggregate", self.frame_aggregate, SET_AGGREGATES)
        _check_choice("patch_aggregate", self.patch_aggregate, SET_AGGREGATES)
        _check_choice("mode", self.mode, MODES)
        if self.top_k < 1:
            raise ValueError(f"top_k must be >= 1, got {self.top_k}")
        if self.window_size < 2 or not 0 <= self.window_overlap < self.window_size:
            raise ValueError(
                f"need window_size >= 2 and 0 <= window_overlap < window_size, "
                f"got {self.window_size}, {self.window_overlap}"
            )
        if self.window_batch < 1:
            raise ValueError(f"window_batch must be >= 1, got {self.window_batch}")
        if self.text_temperature <= 0:
            raise ValueError(f"text_temperature must be > 0, got {self.text_temperature}")

    @property
    def max_power(self) -> int:
        """Highest power any graph needs: max(P, Q)."""
        return max(self.P, self.Q)

    @property
    def window_stride(self) -> int:
        """Distance between the starts of consecutive windows: W - overlap."""
        return self.window_size - self.window_overlap


def _check_choice(name: str, value: str, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise ValueError(f"{name} must be one of {choices}, got {value!r}")
