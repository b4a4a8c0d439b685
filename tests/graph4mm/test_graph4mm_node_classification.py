"""graph4mm.node_classification: Graph4MMNodeClassifier, train_node_classifier, synthetic graph, load_magb."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from graph4mm.node_classification import (
    Graph4MMNodeClassifier,
    Graph4MMNodeClassifierConfig,
    GraphDataError,
    load_magb,
    synthetic_multimodal_graph,
    train_node_classifier,
)


def test_synthetic_graph_splits_signal_between_modalities_and_neighbourhood():
    g = synthetic_multimodal_graph(num_nodes=400, seed=0)
    assert g.image.shape == (400, 16) and g.text.shape == (400, 16) and g.num_classes == 4
    assert sorted(torch.cat([g.train_idx, g.val_idx, g.test_idx]).tolist()) == list(range(400))
    same = (g.labels[g.edge_index[0]] == g.labels[g.edge_index[1]]).float().mean()
    assert same > 0.85  # homophilous edges
    # image carries only bit a = y // 2, text only bit b = y % 2: a linear probe (fit on train, scored
    # on val + test) reads its own bit from each modality and is at chance for the other one
    held_out = torch.cat([g.val_idx, g.test_idx])

    def probe(features: torch.Tensor, bit: torch.Tensor) -> float:
        x = torch.cat([features, torch.ones(len(features), 1)], 1)
        w = torch.linalg.lstsq(x[g.train_idx], bit[g.train_idx, None] * 2.0 - 1).solution
        return float(((x[held_out] @ w).squeeze(1) > 0).eq(bit[held_out].bool()).float().mean())

    a, b = g.labels // 2, g.labels % 2
    assert probe(g.image, a) > 0.65 and probe(g.text, b) > 0.65
    assert probe(g.image, b) < 0.62 and probe(g.text, a) < 0.62


def test_classifier_shapes_padding_and_gradients():
    torch.manual_seed(0)
    cfg = Graph4MMNodeClassifierConfig(image_dim=6, text_dim=5, num_classes=3, dim=16, heads=2)
    m = Graph4MMNodeClassifier(cfg)
    image, text = torch.randn(2, 7, 6), torch.randn(2, 7, 5)
    neighbors = torch.randint(0, 7, (2, 7, 3), generator=torch.Generator().manual_seed(0))
    node_mask = torch.arange(7)[None].expand(2, -1) < 5
    logits = m(image, text, neighbors=neighbors, node_mask=node_mask)
    assert logits.shape == (2, 7, 3)
    logits[node_mask].sum().backward()
    for name, p in m.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name
    m.eval()
    image2 = image.clone()
    image2[:, 5:] = 100.0
    with torch.no_grad():
        a = m(image, text, neighbors=neighbors, node_mask=node_mask)[node_mask]
        b = m(image2, text, neighbors=neighbors, node_mask=node_mask)[node_mask]
    assert torch.allclose(a, b, atol=1e-5)


def test_training_learns_and_hop_diffusion_beats_structure_free_attention():
    graph = synthetic_multimodal_graph(num_nodes=400, seed=0)
    common = {"image_dim": 16, "text_dim": 16, "num_classes": 4, "dim": 32, "heads": 4}
    hop = train_node_classifier(graph, Graph4MMNodeClassifierConfig(**common, graph_layer="hop_diffused"),
                                epochs=40, lr=1e-2, seed=0)
    flat = train_node_classifier(graph, Graph4MMNodeClassifierConfig(**common, graph_layer="none"),
                                 epochs=40, lr=1e-2, seed=0)
    print(f"hop-diffused test acc {hop.test_accuracy:.3f}, structure-free {flat.test_accuracy:.3f}")
    assert hop.train_accuracy > 0.8  # it learns
    assert hop.test_accuracy > 0.6  # own features alone cap at about 0.58
    assert hop.test_accuracy > flat.test_accuracy + 0.1


def _write_magb(root, n=12, with_splits=True, labels_in_pt=False):
    gen = np.random.default_rng(0)
    (root / "TextFeature").mkdir(parents=True)
    (root / "ImageFeature").mkdir()
    edge_index = torch.tensor([[0, 1, 2, 3, 4, 5, 6], [1, 2, 3, 4, 5, 6, 7]])
    labels = np.arange(n) % 3
    payload = {"edge_index": edge_index, "label": torch.from_numpy(labels)} if labels_in_pt else edge_index
    torch.save(payload, root / "ToyGraph.pt")
    text = gen.normal(size=(n, 6)).astype(np.float32)
    np.save(root / "TextFeature" / "Toy_roberta_base_512_mean.npy", text)
    np.save(root / "ImageFeature" / "Toy_clip_vit.npy", gen.normal(size=(n, 4)).astype(np.float32))
    if not labels_in_pt:
        np.save(root / "labels.npy", labels)
    if with_splits:
        for name, idx in (("train", [0, 1, 2, 3, 4, 5]), ("val", [6, 7, 8]), ("test", [9, 10, 11])):
            np.save(root / f"{name}_idx.npy", np.array(idx))
    return edge_index, labels


def test_load_magb_reads_the_published_layout(tmp_path):
    edge_index, labels = _write_magb(tmp_path)
    g = load_magb(tmp_path)
    assert torch.equal(g.edge_index, edge_index) and g.labels.tolist() == labels.tolist()
    assert g.image.shape == (12, 4) and g.text.shape == (12, 6) and g.image.dtype == torch.float32
    assert g.train_idx.tolist() == [0, 1, 2, 3, 4, 5] and g.test_idx.tolist() == [9, 10, 11]
    cfg = Graph4MMNodeClassifierConfig(image_dim=4, text_dim=6, num_classes=g.num_classes, dim=8, heads=2)
    result = train_node_classifier(g, cfg, epochs=2)
    assert 0.0 <= result.test_accuracy <= 1.0 and result.best_epoch in (0, 1)


def test_load_magb_default_split_and_labels_inside_the_graph_file(tmp_path):
    _write_magb(tmp_path, with_splits=False, labels_in_pt=True)
    g = load_magb(tmp_path)
    assert (len(g.train_idx), len(g.val_idx), len(g.test_idx)) == (7, 2, 3)
    assert sorted(torch.cat([g.train_idx, g.val_idx, g.test_idx]).tolist()) == list(range(12))


class NotATensor:
    """Stands in for a pickled DGL graph object."""


def test_load_magb_refuses_pickled_objects_and_names_problems(tmp_path):
    _write_magb(tmp_path)
    torch.save({"edge_index": NotATensor()}, tmp_path / "ToyGraph.pt")
    with pytest.raises(GraphDataError, match="not a plain tensor file"):
        load_magb(tmp_path)
    torch.save(torch.tensor([[0, 1], [1, 99]]), tmp_path / "ToyGraph.pt")
    with pytest.raises(GraphDataError, match="outside"):
        load_magb(tmp_path)
    np.save(tmp_path / "TextFeature" / "second.npy", np.zeros((12, 2)))
    with pytest.raises(GraphDataError, match="exactly one text feature"):
        load_magb(tmp_path)


def test_graph_data_error_is_a_value_error_and_names_the_missing_file(tmp_path):
    assert issubclass(GraphDataError, ValueError)
    with pytest.raises(GraphDataError, match="graph"):
        load_magb(tmp_path)  # empty folder: no graph file


def test_graph4mm_stands_alone_without_vad():
    """graph4mm (core and node classification) imports nothing from the vad package."""
    code = ("import sys, graph4mm, graph4mm.node_classification\n"
            "from graph4mm import HopDiffusedAttention, HopDiffusedAttentionConfig, MMQFormer\n"
            "from graph4mm import MMQFormerConfig, ops\n"
            "bad = sorted(m for m in sys.modules if m == 'vad' or m.startswith('vad.'))\n"
            "assert not bad, bad\n"
            "assert not hasattr(graph4mm, 'load_magb')  # node classification lives in its subpackage\n")
    root = Path(__file__).resolve().parents[2]
    env = {**os.environ, "PYTHONPATH": str(root)}
    proc = subprocess.run([sys.executable, "-c", code], cwd=root, env=env, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
