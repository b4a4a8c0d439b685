import pytest
import torch

from vad.errors import WeightsError
from vad.features.backbone import TINY_MODEL, BackboneConfig, autocast_dtype, load_backbone, resolve_device


def test_checkpoint_round_trip_gives_identical_embeddings(tiny_checkpoint, tiny_backbone):
    """Weights loaded through --pretrained PATH are the saved ones: a second load embeds identically."""
    again = load_backbone(BackboneConfig(name=TINY_MODEL, pretrained=str(tiny_checkpoint), device="cpu"))
    frames = torch.randint(0, 256, (3, 48, 64, 3), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    a, pa = tiny_backbone.encode_frames(frames)
    b, pb = again.encode_frames(frames)
    assert torch.equal(a, b) and torch.equal(pa, pb)
    assert tiny_backbone.weights_id == str(tiny_checkpoint.resolve())


def test_shapes_and_normalisation(tiny_backbone):
    frames = torch.randint(0, 256, (5, 64, 86, 3), dtype=torch.uint8)
    pooled, patches = tiny_backbone.encode_frames(frames)
    assert pooled.shape == (5, 64) and patches.shape == (5, 4, 64)  # patch_grid 2 -> P = 4
    assert torch.allclose(pooled.norm(dim=-1), torch.ones(5), atol=1e-5)
    text = tiny_backbone.encode_text(["normal", "fighting", "explosion"])
    assert text.shape == (3, 64)


def test_random_backbone_only_by_name():
    bb = load_backbone(BackboneConfig(name=TINY_MODEL, pretrained="random", device="cpu"))
    assert bb.weights_id == "random"


@pytest.mark.parametrize("pretrained,match", [
    ("/does/not/exist.safetensors", "checkpoint file not found"),
    ("no-such-tag", "not a checkpoint file nor an open_clip tag"),
])
def test_missing_weights_say_how_to_fix(pretrained, match):
    with pytest.raises(WeightsError, match=match):
        load_backbone(BackboneConfig(name=TINY_MODEL, pretrained=pretrained, device="cpu"))


def test_uncached_tag_fails_fast_with_fix(monkeypatch):
    """With no network and no cache, a real tag fails with a message that names the fixes."""
    import vad.features.backbone as bb

    monkeypatch.setattr(bb, "_hub_reachable", lambda timeout=3.0: False)
    with pytest.raises(WeightsError) as err:
        load_backbone(BackboneConfig(name="ViT-B-32", pretrained="openai", device="cpu"))
    assert "or to random" in str(err.value) and "checkpoint" in str(err.value)


def test_untrusted_pickle_checkpoint_is_refused(tmp_path):
    """A checkpoint holding arbitrary Python objects is not unpickled (weights_only=True)."""
    class Payload:
        def __reduce__(self):
            return (print, ("pwned",))

    path = tmp_path / "evil.pt"
    torch.save({"state_dict": Payload()}, path)
    with pytest.raises(WeightsError, match="cannot load this checkpoint"):
        load_backbone(BackboneConfig(name=TINY_MODEL, pretrained=str(path), device="cpu"))


def test_unknown_model_name():
    with pytest.raises(WeightsError, match="not an open_clip model name"):
        load_backbone(BackboneConfig(name="ViT-Nope", pretrained="random"))


def test_device_and_precision_resolution():
    assert resolve_device("cpu").type == "cpu"
    assert autocast_dtype(torch.device("cpu"), "auto") is None  # fp32 on CPU
    assert autocast_dtype(torch.device("cpu"), "bf16") is torch.bfloat16
    if not torch.cuda.is_available():
        with pytest.raises(WeightsError, match="CUDA is not available"):
            resolve_device("cuda")


_EMBED = """
import sys, torch
from vad.features.backbone import TINY_MODEL, BackboneConfig, load_backbone
bb = load_backbone(BackboneConfig(name=TINY_MODEL, pretrained=sys.argv[1], device="cpu"))
frames = torch.arange(2 * 64 * 64 * 3, dtype=torch.int64).remainder(251).to(torch.uint8).view(2, 64, 64, 3)
print(bb.weights_id, repr(bb.encode_frames(frames)[0].sum().item()))
"""


def test_seeded_random_backbones_are_identical_across_processes():
    """`random` is seed 0 and `random:SEED` another seed: any later process rebuilds the very same weights."""
    import subprocess
    import sys

    def embed(spec: str) -> str:
        out = subprocess.run([sys.executable, "-c", _EMBED, spec], capture_output=True, text=True, check=True)
        return out.stdout.strip()

    first, again, other = embed("random"), embed("random"), embed("random:3")
    assert first == again and first.startswith("random ")
    assert other.startswith("random:3 ") and other.split()[1] != first.split()[1]


def test_random_seed_must_be_an_integer():
    with pytest.raises(WeightsError, match="seed after 'random:'"):
        load_backbone(BackboneConfig(name=TINY_MODEL, pretrained="random:abc", device="cpu"))
