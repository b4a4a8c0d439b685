"""The CLIP backbone factory: one place that chooses an open_clip model by name and loads its weights.

``--pretrained`` is an open_clip tag (``openai``, ``laion2b_s34b_b88k``: downloaded through open_clip on a
machine with internet, or found in its cache), a local checkpoint file (``.safetensors`` or a torch state dict,
loaded with ``weights_only=True``), or the explicit word ``random`` for a random-initialised backbone. Nothing
falls back silently: when weights cannot be had, ``WeightsError`` says so and how to fix it.
"""
from __future__ import annotations

import contextlib
import logging
import os
from pathlib import Path

import torch
import torch.nn.functional as F

from vad.errors import WeightsError
from vad.features.config import BackboneConfig

RANDOM = "random"
TINY_MODEL = "vadgraph-tiny-ViT"  # a 2-layer, 64-wide ViT registered from vad/model_configs for tests and benches
_CONFIG_DIR = Path(__file__).with_name("model_configs")
_registered = False


def register_model_configs() -> None:
    """Add this package's model configs (the tiny test backbone) to open_clip's registry, once."""
    global _registered
    if not _registered:
        import open_clip

        open_clip.add_model_config(_CONFIG_DIR)
        _registered = True


def resolve_device(spec: str = "auto") -> torch.device:
    """``auto`` picks CUDA when available; an explicit ``cuda`` on a machine without one is an error."""
    if spec == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(spec)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise WeightsError(f"`device` {spec}: CUDA is not available on this machine (use cpu or auto)")
    return device


def autocast_dtype(device: torch.device, precision: str) -> torch.dtype | None:
    """The autocast dtype for ``precision`` on ``device``; None means run in fp32 without autocast."""
    if precision == "fp32" or (precision == "auto" and device.type != "cuda"):
        return None
    if precision == "auto":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return {"fp16": torch.float16, "bf16": torch.bfloat16}[precision]


class Backbone:
    """A loaded open_clip model with its preprocessing constants and tokenizer.

    ``encode_frames`` takes decoded RGB frames and returns the global (pooled) and patch-level embeddings in
    the joint image-text space, both L2-normalised.
    """

    def __init__(self, model: torch.nn.Module, tokenizer, config: BackboneConfig, device: torch.device,
                 weights_id: str) -> None:
        self.model = model.eval().to(device)
        self.tokenizer = tokenizer
        self.config = config
        self.device = device
        self.weights_id = weights_id
        self.amp_dtype = autocast_dtype(device, config.precision)
        visual = model.visual
        pp = getattr(visual, "preprocess_cfg", {}) or {}
        size = getattr(visual, "image_size", 224)
        self.image_size: int = int(size[0] if isinstance(size, (tuple, list)) else size)
        self.mean = torch.tensor(pp.get("mean", (0.48145466, 0.4578275, 0.40821073)), device=device).view(1, 3, 1, 1)
        self.std = torch.tensor(pp.get("std", (0.26862954, 0.26130258, 0.27577711)), device=device).view(1, 3, 1, 1)
        self.embed_dim = int(model.text_projection.shape[-1] if hasattr(model, "text_projection")
                             and model.text_projection is not None else visual.output_dim)
        self._has_tokens = hasattr(visual, "output_tokens") and getattr(visual, "proj", None) is not None

    @property
    def name(self) -> str:
        """The open_clip model name."""
        return self.config.name

    def preprocess(self, frames: torch.Tensor) -> torch.Tensor:
        """uint8 RGB ``(T, H, W, 3)`` → normalised ``(T, 3, S, S)``: resize shorter side, centre crop (CLIP's eval)."""
        x = frames.to(self.device, non_blocking=True).permute(0, 3, 1, 2).float().div_(255.0)
        h, w = x.shape[-2:]
        s = self.image_size
        if min(h, w) != s:
            scale = s / min(h, w)
            x = F.interpolate(x, size=(max(s, round(h * scale)), max(s, round(w * scale))), mode="bicubic",
                              align_corners=False, antialias=True).clamp_(0, 1)
            h, w = x.shape[-2:]
        top, left = (h - s) // 2, (w - s) // 2
        x = x[:, :, top:top + s, left:left + s]
        return (x - self.mean) / self.std

    @torch.inference_mode()
    def encode_frames(self, frames: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Embed frames: uint8 ``(T, H, W, 3)`` → pooled ``(T, D)`` and patch grid ``(T, P, D)`` (or None).

        The patch level projects the ViT's output tokens with the same projection as the pooled token (as in
        MaskCLIP), then average-pools the token grid to ``patch_grid x patch_grid``.
        """
        x = self.preprocess(frames)
        visual = self.model.visual
        with torch.autocast(self.device.type, dtype=self.amp_dtype, enabled=self.amp_dtype is not None):
            if self._has_tokens:
                visual.output_tokens = True
                try:
                    pooled, tokens = visual(x)  # tokens: shape = [T, grid ** 2, width]
                finally:
                    visual.output_tokens = False
                patches = self._pool_patches(tokens @ visual.proj)
            else:
                pooled, patches = visual(x), None
        pooled = F.normalize(pooled.float(), dim=-1)
        return pooled, None if patches is None else F.normalize(patches.float(), dim=-1)

    def _pool_patches(self, tokens: torch.Tensor) -> torch.Tensor:
        t, n, d = tokens.shape
        grid = int(round(n ** 0.5))
        if grid * grid != n:  # e.g. register tokens: keep the spatial ones
            tokens, n = tokens[:, -grid * grid:], grid * grid
        g = self.config.patch_grid
        maps = tokens.transpose(1, 2).reshape(t, d, grid, grid)  # shape = [T, D, grid, grid]
        pooled = F.adaptive_avg_pool2d(maps.float(), g)  # shape = [T, D, g, g]
        return pooled.flatten(2).transpose(1, 2)  # shape = [T, g * g, D]

    @torch.inference_mode()
    def encode_text(self, prompts: list[str]) -> torch.Tensor:
        """L2-normalised text embeddings ``(K, D)`` of ``prompts``."""
        tokens = self.tokenizer(prompts).to(self.device)
        with torch.autocast(self.device.type, dtype=self.amp_dtype, enabled=self.amp_dtype is not None):
            emb = self.model.encode_text(tokens)
        return F.normalize(emb.float(), dim=-1)


def random_seed(pretrained: str) -> int | None:
    """The seed of a random-initialised backbone: ``random`` = 0, ``random:SEED``; None for real weights.

    Seeded, so any later command (``vad score`` rebuilding the checkpoint's backbone) gets the same weights.
    """
    if pretrained == RANDOM:
        return 0
    if pretrained.startswith(RANDOM + ":"):
        try:
            return int(pretrained.split(":", 1)[1])
        except ValueError:
            raise WeightsError(f"`pretrained` {pretrained!r}: the seed after 'random:' must be an integer") from None
    return None


def is_random_weights(weights: str | os.PathLike | None) -> bool:
    """Whether backbone ``weights`` are random-initialised: ``random``, ``random:SEED`` or a ``*-random-*`` file
    (what ``vad demo`` and the benches save)."""
    text = str(weights or "")
    return text.startswith(RANDOM) or "-random-" in Path(text).stem


RANDOM_NOTE = "random-initialised backbone: shows the pipeline works, not what real CLIP weights would find"


def load_backbone(config: BackboneConfig) -> Backbone:
    """Build the open_clip model named in ``config`` and load its weights (see module docstring)."""
    import open_clip

    register_model_configs()
    if config.name not in open_clip.list_models():
        raise WeightsError(f"`backbone` {config.name!r}: not an open_clip model name "
                           f"(e.g. ViT-B-16, ViT-B-32, ViT-L-14, {TINY_MODEL})")
    device = resolve_device(config.device)
    pretrained = config.pretrained
    seed = random_seed(pretrained)
    if seed is not None:
        logging.getLogger(__name__).warning("using a RANDOM-initialised %s backbone (seed %d, asked for with "
                                            "`pretrained` %s): features carry no learned semantics",
                                            config.name, seed, pretrained)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            model = open_clip.create_model(config.name, pretrained=None, pretrained_text=False, device="cpu")
        weights_id = RANDOM if seed == 0 else f"{RANDOM}:{seed}"
    else:
        model = _create_with_weights(open_clip, config.name, pretrained)
        weights_id = str(Path(pretrained).resolve()) if os.path.isfile(pretrained) else pretrained
    tokenizer = open_clip.get_tokenizer(config.name)
    return Backbone(model, tokenizer, config, device, weights_id)


def _create_with_weights(open_clip, name: str, pretrained: str) -> torch.nn.Module:
    is_file = os.path.isfile(pretrained)
    known_tags = open_clip.list_pretrained_tags_by_model(name)
    looks_like_path = is_file or os.sep in pretrained or pretrained.endswith((".pt", ".pth", ".bin", ".safetensors"))
    if looks_like_path and not is_file:
        raise WeightsError(f"`pretrained` {pretrained}: checkpoint file not found")
    if not is_file and pretrained not in known_tags:
        raise WeightsError(f"`pretrained` {pretrained!r}: not a checkpoint file nor an open_clip tag for {name} "
                           f"(tags: {', '.join(known_tags) or 'none'}; or random)")
    try:
        if is_file:
            return open_clip.create_model(name, pretrained=pretrained, weights_only=True, device="cpu")
        with _hub_mode(offline=not _hub_reachable()):  # cache first; no minute of retries on a closed network
            return open_clip.create_model(name, pretrained=pretrained, weights_only=True, device="cpu")
    except Exception as exc:
        first = str(exc).strip().splitlines()[0][:160] if str(exc).strip() else type(exc).__name__
        if is_file:
            raise WeightsError(f"`pretrained` {pretrained}: cannot load this checkpoint into {name} "
                               f"(untrusted pickles are refused; use .safetensors or a plain state dict): "
                               f"{first}") from exc
        raise WeightsError(
            f"`pretrained` {pretrained}: weights for {name} are not cached and cannot be downloaded here "
            f"({first}). Fix: run once on a machine with internet to fill open_clip's cache, or set "
            f"`pretrained` to /path/to/checkpoint.safetensors, or to random for an untrained backbone."
        ) from exc


def _hub_reachable(timeout: float = 3.0) -> bool:
    """Whether the model hub that open_clip downloads from answers at all (one TCP connect)."""
    import socket
    from urllib.parse import urlparse

    try:
        from huggingface_hub import constants

        url = urlparse(constants.ENDPOINT)
        with socket.create_connection((url.hostname, url.port or 443), timeout=timeout):
            return True
    except Exception:
        return False


@contextlib.contextmanager
def _hub_mode(offline: bool):
    """Temporarily switch huggingface_hub to cache-only mode and quiet its retry logging."""
    from huggingface_hub import constants

    saved = constants.HF_HUB_OFFLINE
    hub_log = logging.getLogger("huggingface_hub")
    saved_level = hub_log.level
    constants.HF_HUB_OFFLINE = offline or saved
    hub_log.setLevel(logging.ERROR)
    try:
        yield
    finally:
        constants.HF_HUB_OFFLINE = saved
        hub_log.setLevel(saved_level)


def save_random_checkpoint(name: str, path: str | os.PathLike, seed: int = 0) -> Path:
    """Write a random-initialised ``name`` model's weights to ``path`` (.safetensors): the offline stand-in for
    real weights in tests and benchmarks, loaded back through the same ``--pretrained PATH`` code path."""
    import open_clip
    from safetensors.torch import save_model

    register_model_configs()
    torch.manual_seed(seed)
    model = open_clip.create_model(name, pretrained=None, pretrained_text=False, device="cpu")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    save_model(model, str(path))
    return path
