"""Multimodal attributed graphs: the MAGB loader and a synthetic graph with a known signal split.

MAGB (Yan et al., 2024; Movies, Toys, Grocery, Reddit-S, Reddit-M) publishes per dataset a graph
file ``<Name>Graph.pt`` (a DGL graph), pre-extracted features in ``TextFeature/`` and ``ImageFeature/``
(one ``.npy`` of shape (N, d) per extractor), and splits drawn at run time (seeded permutation,
60 / 20 / 20). DGL is not a dependency here, so :func:`load_magb` reads the graph as a plain tensor file
(loaded with ``torch.load(weights_only=True)``, never pickle):

* ``<Name>Graph.pt`` (or the only ``*.pt`` in the folder): a long tensor ``(2, E)`` edge index, or a
  dict with ``"edge_index"`` and optionally ``"label"``. Convert a DGL graph once with
  ``torch.save({"edge_index": torch.stack(g.edges()), "label": g.ndata["label"]}, path)``.
* ``TextFeature/*.npy`` and ``ImageFeature/*.npy``: float ``(N, d)``; ``labels.npy`` ``(N,)`` int
  (needed unless the ``.pt`` holds labels).
* optional ``train_idx.npy``, ``val_idx.npy``, ``test_idx.npy``; otherwise MAGB's split (permutation with
  numpy seed 42, ratios 0.6 / 0.2).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from graph4mm.errors import GraphDataError

__all__ = ["MultimodalGraph", "load_magb", "synthetic_multimodal_graph"]


@dataclass
class MultimodalGraph:
    """A node-classification graph whose nodes carry an image and a text embedding.

    Attributes:
        image: ``(N, D_i)`` float image embeddings.
        text: ``(N, D_t)`` float text embeddings.
        edge_index: ``(2, E)`` long edges (source, target).
        labels: ``(N,)`` long class ids in ``[0, num_classes)``.
        train_idx, val_idx, test_idx: long node indices of the splits.
    """

    image: Tensor  # (N, D_i)
    text: Tensor  # (N, D_t)
    edge_index: Tensor  # (2, E)
    labels: Tensor  # (N,)
    train_idx: Tensor  # (N_train,)
    val_idx: Tensor  # (N_val,)
    test_idx: Tensor  # (N_test,)

    @property
    def num_nodes(self) -> int:
        """Number of nodes N."""
        return self.labels.shape[0]

    @property
    def num_classes(self) -> int:
        """Number of classes (max label + 1)."""
        return int(self.labels.max()) + 1


def _pick(folder: Path, pattern: str, name: str | None, what: str) -> Path:
    if name is not None:
        path = folder / name
        if not path.is_file():
            raise GraphDataError(f"{what} file not found: {path}")
        return path
    found = sorted(folder.glob(pattern))
    if len(found) != 1:
        listing = ", ".join(p.name for p in found) or "none"
        raise GraphDataError(f"expected exactly one {what} file matching {folder / pattern} "
                             f"(found: {listing}); name the one to use")
    return found[0]


def _load_npy(path: Path) -> np.ndarray:
    try:
        return np.load(path, allow_pickle=False)
    except (ValueError, OSError) as err:
        raise GraphDataError(f"cannot read {path} as a numeric .npy array: {err}") from None


def _split(n: int, train_ratio: float, val_ratio: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """MAGB's split: a permutation with numpy seed 42, first train_ratio·N train, next val_ratio·N val."""
    perm = np.random.RandomState(42).permutation(n)
    n_train, n_val = int(n * train_ratio), int(n * val_ratio)
    return perm[:n_train], perm[n_train:n_train + n_val], perm[n_train + n_val:]


def _read_graph(root: Path, graph_file: str | None) -> tuple[Path, Tensor, Tensor | None]:
    """The graph file of a MAGB folder → (its path, edge index ``(2, E)`` long, labels ``(N,)`` or None)."""
    if graph_file is None and len(list(root.glob("*Graph.pt"))) == 1:
        graph_file = next(root.glob("*Graph.pt")).name
    graph_path = _pick(root, "*.pt", graph_file, "graph (.pt)")
    try:
        payload = torch.load(graph_path, map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001 - any unpickling refusal means "not a plain tensor file"
        raise GraphDataError(f"{graph_path} is not a plain tensor file (a DGL graph needs a one-time "
                             f"conversion to an edge-index tensor, see graph4mm.node_classification.data): "
                             f"{type(err).__name__}") from None
    labels = None
    if isinstance(payload, dict):
        if "edge_index" not in payload:
            raise GraphDataError(f"{graph_path}: dict without an 'edge_index' entry")
        labels = payload.get("label")
        payload = payload["edge_index"]
    if not isinstance(payload, Tensor) or payload.dim() != 2 or payload.shape[0] != 2:
        raise GraphDataError(f"{graph_path}: expected an edge index of shape (2, E)")
    return graph_path, payload.long(), labels


def load_magb(
    root: str | Path,
    text_feature: str | None = None,
    image_feature: str | None = None,
    graph_file: str | None = None,
    train_ratio: float = 0.6,
    val_ratio: float = 0.2,
) -> MultimodalGraph:
    """Load one MAGB dataset folder (layout in the module docstring).

    Args:
        root: the dataset folder, e.g. ``Data/Movies``.
        text_feature: file name inside ``TextFeature/`` (default: the only ``.npy`` there).
        image_feature: file name inside ``ImageFeature/`` (default: the only ``.npy`` there).
        graph_file: graph file name inside ``root`` (default: ``*Graph.pt``, else the only ``*.pt``).
        train_ratio, val_ratio: split ratios used when no ``*_idx.npy`` files are present.

    Returns:
        :class:`MultimodalGraph` with ``image (N, D_i)``, ``text (N, D_t)``, ``edge_index (2, E)``,
        ``labels (N,)``.

    Raises:
        GraphDataError: missing files, a DGL-pickled graph, or inconsistent shapes (message names the file).
    """
    root = Path(root)
    graph_path, edge_index, labels = _read_graph(root, graph_file)
    text = _load_npy(_pick(root / "TextFeature", "*.npy", text_feature, "text feature"))
    image = _load_npy(_pick(root / "ImageFeature", "*.npy", image_feature, "image feature"))
    if labels is None:
        labels = torch.from_numpy(_load_npy(_pick(root, "labels.npy", None, "labels")))
    labels = torch.as_tensor(labels).long().flatten()
    n = labels.shape[0]
    for name, arr in (("text feature", text), ("image feature", image)):
        if arr.ndim != 2 or arr.shape[0] != n:
            raise GraphDataError(f"{name} array has shape {arr.shape}, expected ({n}, d)")
    if edge_index.numel() and (int(edge_index.min()) < 0 or int(edge_index.max()) >= n):
        raise GraphDataError(f"{graph_path}: edge index refers to nodes outside [0, {n})")

    split_files = [root / f"{s}_idx.npy" for s in ("train", "val", "test")]
    if all(p.is_file() for p in split_files):
        splits = [_load_npy(p) for p in split_files]
    else:
        splits = list(_split(n, train_ratio, val_ratio))
    train_idx, val_idx, test_idx = (torch.as_tensor(s).long() for s in splits)
    return MultimodalGraph(
        image=torch.from_numpy(np.ascontiguousarray(image, dtype=np.float32)),
        text=torch.from_numpy(np.ascontiguousarray(text, dtype=np.float32)),
        edge_index=edge_index, labels=labels, train_idx=train_idx, val_idx=val_idx, test_idx=test_idx,
    )


def synthetic_multimodal_graph(
    num_nodes: int = 400,
    image_dim: int = 16,
    text_dim: int = 16,
    degree: int = 8,
    homophily: float = 0.9,
    snr: float = 0.7,
    seed: int = 0,
) -> MultimodalGraph:
    r"""A 4-class multimodal graph whose class signal is split between image, text and neighbourhood.

    Class ``y = 2a + b``: the image embedding carries only bit ``a`` and the text embedding only bit
    ``b`` (``± snr`` along a fixed random unit direction, plus unit Gaussian noise), so neither modality
    alone beats 50 % and one node's own features give about :math:`\Phi(\text{snr})^2` (≈ 0.58 at
    0.7). Each node links to ``degree / 2`` others (undirected, so average degree ≈ ``degree``), a
    fraction ``homophily`` of the same class: averaging over the neighbourhood removes most of the
    noise, so structure-aware models reach well above the own-feature ceiling.

    Splits: 60 / 20 / 20 random (seeded).

    Shapes:
        returns :class:`MultimodalGraph` with image ``(N, image_dim)``, text ``(N, text_dim)``,
        edge_index ``(2, E)``, labels ``(N,)``.
    """
    gen = torch.Generator().manual_seed(seed)
    labels = torch.arange(num_nodes) % 4
    labels = labels[torch.randperm(num_nodes, generator=gen)]
    bit_a, bit_b = (labels // 2).float() * 2 - 1, (labels % 2).float() * 2 - 1  # ±1
    dir_i = torch.randn(image_dim, generator=gen)
    dir_t = torch.randn(text_dim, generator=gen)
    image = snr * bit_a[:, None] * dir_i / dir_i.norm() + torch.randn(num_nodes, image_dim, generator=gen)
    text = snr * bit_b[:, None] * dir_t / dir_t.norm() + torch.randn(num_nodes, text_dim, generator=gen)

    by_class = [torch.nonzero(labels == c).flatten() for c in range(4)]
    per_node = max(1, math.ceil(degree / 2))
    src = torch.arange(num_nodes).repeat_interleave(per_node)
    same = torch.rand(src.numel(), generator=gen) < homophily
    dst = torch.randint(0, num_nodes, (src.numel(),), generator=gen)  # random partner (any class)
    for c in range(4):  # same-class partners
        pick = same & (labels[src] == c)
        choice = torch.randint(0, by_class[c].numel(), (int(pick.sum()),), generator=gen)
        dst[pick] = by_class[c][choice]
    keep = src != dst
    edge_index = torch.stack([src[keep], dst[keep]])

    perm = torch.randperm(num_nodes, generator=gen)
    n_train, n_val = int(0.6 * num_nodes), int(0.2 * num_nodes)
    return MultimodalGraph(
        image=image, text=text, edge_index=edge_index, labels=labels,
        train_idx=perm[:n_train], val_idx=perm[n_train:n_train + n_val], test_idx=perm[n_train + n_val:],
    )
