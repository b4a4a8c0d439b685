"""``LEGOFusion``: the learnable pairwise fusion of graph powers, G = sum_p sum_q A_pq (R_a^p * R_b^q)."""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from fusion.config import LEGOConfig


@dataclass(frozen=True)
class FusionWeights:
    """The learned fusion matrices, one per pair of levels: the method's interpretability read-out.

    ``weights[i, p, q]`` is how much the p-hop relations of ``pairs[i][0]`` combined with the q-hop relations
    of ``pairs[i][1]`` contribute to the fused graph.
    """

    pairs: tuple[tuple[str, str], ...]  # (level a, level b) of each pair, in parameter order
    weights: Tensor  # (num_pairs, P + 1, Q + 1), detached copy of A

    @property
    def names(self) -> tuple[str, ...]:
        """Pair names such as ``"clip*frame"``."""
        return tuple(f"{a}*{b}" for a, b in self.pairs)

    def as_dict(self) -> dict[str, list[list[float]]]:
        """``{"clip*frame": [[A_00, A_01, ...], ...], ...}``, JSON-ready."""
        return {name: w.tolist() for name, w in zip(self.names, self.weights, strict=True)}


def level_pairs(levels: tuple[str, ...]) -> tuple[tuple[str, str], ...]:
    """Unordered pairs of distinct levels in config order; a single level pairs with itself (one graph)."""
    if len(levels) == 1:
        return ((levels[0], levels[0]),)
    return tuple(itertools.combinations(levels, 2))


def fuse_pair(powers_a: Tensor, powers_b: Tensor, weight: Tensor) -> Tensor:
    """Pairwise LEGO operator :math:`G = \\sum_{p=0}^{P} \\sum_{q=0}^{Q} A_{pq} (R_a^p \\odot R_b^q)`.

    Args:
        powers_a: ``(B, >= P + 1, N, N)`` powers of graph a (only the first P + 1 are used).
        powers_b: ``(B, >= Q + 1, N, N)`` powers of graph b (only the first Q + 1 are used).
        weight: ``(P + 1, Q + 1)`` fusion matrix A.

    Returns:
        ``(B, N, N)`` fused graph G. Cost O((P + 1)(Q + 1) N^2) per sample.
    """
    p1, q1 = weight.shape
    mixed_b = torch.einsum("pq,bqij->bpij", weight, powers_b[:, :q1])  # shape = [B, P+1, N, N]
    return (powers_a[:, :p1] * mixed_b).sum(dim=1)


class LEGOFusion(nn.Module):
    """Learnable fusion of the relationship graphs of several levels (LEGO, Ding et al., ICLR 2025).

    For every pair (a, b) of levels in ``config.levels`` there is a learnable matrix
    :math:`A^{(ab)} \\in \\mathbb{R}^{(P+1) \\times (Q+1)}` and

    .. math::
        G^{(ab)} = \\sum_{p=0}^{P} \\sum_{q=0}^{Q} A^{(ab)}_{pq} \\, (R_a^p \\odot R_b^q).

    Which pairs are combined:

    - **training** (``config.train_pair_sampling``, as in the paper): one pair drawn uniformly at random per
      call, among the pairs whose two levels are present; ``G = G^{(ab)}``.
    - **inference** (``eval()``, or training without sampling): the plain mean over the present pairs,
      :math:`G = \\frac{1}{|\\mathcal P|} \\sum_{(a,b)} G^{(ab)}`. This is the expectation of the training
      operator under uniform sampling, so the scale the downstream layers learned in training is kept, and it
      is deterministic. (A learned softmax over pairs could not be trained: one sampled pair gives it no
      gradient.)

    A single configured level gives the degenerate pair (a, a): :math:`\\sum A_{pq} R_a^p \\odot R_a^q`.
    Parameters: num_pairs * (P + 1) * (Q + 1), e.g. 6 * 9 = 54 for four levels and P = Q = 2.

    Shapes:
        powers: mapping level -> ``(B, max(P, Q) + 1, N, N)``; output ``(B, N, N)``.
    """

    def __init__(self, config: LEGOConfig) -> None:
        super().__init__()
        self.config = config
        self.pairs = level_pairs(config.levels)
        self.weight = nn.Parameter(torch.empty(len(self.pairs), config.P + 1, config.Q + 1))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """A = 1 / ((P + 1)(Q + 1)) for every pair: G starts as the mean of all Hadamard terms."""
        nn.init.constant_(self.weight, 1.0 / self.weight[0].numel())

    def available_pairs(self, present: Iterable[str]) -> list[int]:
        """Indices of the pairs whose two levels are both in ``present``."""
        present = set(present)
        usable = [i for i, (a, b) in enumerate(self.pairs) if a in present and b in present]
        if not usable:
            raise ValueError(
                f"no fusion pair among levels {sorted(present)}; "
                f"this model fuses pairs {self.fusion_weights().names}"
            )
        return usable

    def draw_pair(self, present: Iterable[str]) -> int | None:
        """The pair a training step uses (random, from torch's global generator), or None = mean over pairs.

        None in eval mode and when ``config.train_pair_sampling`` is False. Call once per batch and pass the
        result to :meth:`forward`, so that all windows of a long video use the same pair.
        """
        usable = self.available_pairs(present)
        if not (self.training and self.config.train_pair_sampling):
            return None
        return usable[int(torch.randint(len(usable), (1,)).item())]

    def forward(self, powers: Mapping[str, Tensor], pair: int | None = None) -> Tensor:
        """Fuse the graph powers of the present levels.

        Args:
            powers: level name -> ``(B, max(P, Q) + 1, N, N)`` powers (see :func:`fusion.graph_powers`).
            pair: index into ``self.pairs`` to use that pair only; None = :meth:`draw_pair` (random pair in
                training, mean over present pairs otherwise).

        Returns:
            ``(B, N, N)`` fused graph G.
        """
        if pair is None:
            pair = self.draw_pair(powers.keys())
        indices = [pair] if pair is not None else self.available_pairs(powers.keys())
        fused = sum(
            fuse_pair(powers[self.pairs[i][0]], powers[self.pairs[i][1]], self.weight[i]) for i in indices
        )
        return fused / len(indices)

    def fusion_weights(self) -> FusionWeights:
        """The learned A matrices ``(num_pairs, P + 1, Q + 1)`` with their pair names."""
        return FusionWeights(pairs=self.pairs, weights=self.weight.detach().clone())

    def extra_repr(self) -> str:
        names = ", ".join(f"{a}*{b}" for a, b in self.pairs)
        sampling = "random pair" if self.config.train_pair_sampling else "mean of pairs"
        return f"pairs=[{names}], P={self.config.P}, Q={self.config.Q}, train={sampling}, eval=mean of pairs"
