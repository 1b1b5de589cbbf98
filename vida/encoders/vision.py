"""Visual encoders from ``transformers``: any image backbone per frame, VideoMAE per
clip, and the study's own randomly initialised ViT.

* ``hf-image:MODEL`` (rgb) and ``hf-flow:MODEL`` (flow): any ``AutoModel`` image
  backbone whose output has ``last_hidden_state`` (ViT, DINOv2, CLIP's vision
  tower, ...), from a hub name or a local directory.  Per frame, ``pooling=cls``
  (the first token) or ``pooling=mean`` (the mean of the patch tokens, after the
  CLS and any register tokens).  Flow fields are rendered as images first:
  ``render=hsv`` (the study's: hue = angle, value = magnitude scaled per image) or
  ``render=xy`` (red = x, green = y, both clipped to +-``flow_clip`` pixels).
* ``videomae:MODEL`` (rgb): the clip's T frames are sampled down to the model's
  ``num_frames``; the output tokens, averaged over space, give one vector per
  tubelet, and each of the T steps takes the tubelet its frame fell into.
* ``study-vit`` / ``study-vit-flow``: the study's encoder for exact reproduction, a
  randomly initialised (seeded) ViT-Base/16 with a temporal embedding added to every
  token of frame t; frame feature = mean of its patch tokens.

Models load once per process (cached), lazily on the first batch: building an
encoder only reads the model's config, so naming feature sets and planning work
costs no weights.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import cv2
import numpy as np

from vida.encoders.pretrained import from_pretrained, model_revision, slug
from vida.encoders.runtime import in_batches, resolve_device, resolve_dtype
from vida.errors import UsageError

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
POOLINGS = ("cls", "mean")
RENDERS = ("hsv", "xy")


def load_config(name_or_dir: str) -> Any:
    from transformers import AutoConfig

    return from_pretrained("model config", name_or_dir, AutoConfig)[0]


def render_flow(flow: np.ndarray, how: str = "hsv", clip: float = 20.0) -> np.ndarray:
    """A ``[S, S, 2]`` flow field -> a ``[S, S, 3]`` uint8 image."""
    if how == "hsv":
        magnitude, angle = cv2.cartToPolar(flow[..., 0], flow[..., 1], angleInDegrees=True)
        hsv = np.zeros((*flow.shape[:2], 3), np.uint8)
        hsv[..., 0] = (angle / 2).astype(np.uint8)  # OpenCV hue is 0..180
        hsv[..., 1] = 255
        hsv[..., 2] = cv2.normalize(magnitude, None, 0, 255, cv2.NORM_MINMAX).astype(np.uint8)
        return cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)
    if how == "xy":
        scaled = (np.clip(flow, -clip, clip) / clip * 127.5 + 127.5).astype(np.uint8)
        return np.dstack([scaled, np.full(flow.shape[:2], 128, np.uint8)])
    raise UsageError(f"render={how}: use one of {', '.join(RENDERS)}")


@dataclass
class Preprocess:
    """Frames -> normalised pixel values, with the model's own image processor when its
    folder has one, else a resize to the config's image size and ImageNet statistics."""

    processor: Any
    size: int
    mean: tuple[float, ...] = IMAGENET_MEAN
    std: tuple[float, ...] = IMAGENET_STD

    def __call__(self, images: np.ndarray) -> np.ndarray:
        if self.processor is not None:
            return self.processor(images=list(images), return_tensors="np")["pixel_values"]
        resized = np.stack([cv2.resize(im, (self.size, self.size),
                                       interpolation=cv2.INTER_AREA) for im in images])
        x = (resized.astype(np.float32) / 255.0 - self.mean) / self.std
        return x.transpose(0, 3, 1, 2).astype(np.float32)


def image_preprocess(name_or_dir: str, config: Any) -> Preprocess:
    from transformers import AutoImageProcessor

    size = int(getattr(config, "image_size", 224))
    try:
        processor = AutoImageProcessor.from_pretrained(name_or_dir)
    except (OSError, ValueError):
        processor = None
    return Preprocess(processor, size)


@lru_cache(maxsize=4)
def load_backbone(name_or_dir: str, device: str, dtype: str) -> tuple[Any, Preprocess, int]:
    """(module returning last_hidden_state, preprocess, tokens before the patches)."""
    from transformers import AutoModel

    model = from_pretrained("image model", name_or_dir, AutoModel)[0]
    config = model.config
    if hasattr(model, "vision_model"):  # CLIP, SigLIP...: the vision tower alone
        model = model.vision_model
        config = getattr(config, "vision_config", config)
    model = model.to(device=device, dtype=resolve_dtype(dtype)).eval()
    prefix = 1 + int(getattr(config, "num_register_tokens", 0) or 0)
    return model, image_preprocess(name_or_dir, config), prefix


class ImageBackboneEncoder:
    """``hf-image:MODEL``: a transformers image backbone applied to every frame."""

    modality = "rgb"

    def __init__(self, model: str | None = None, n_frames: int = 18, pooling: str = "cls",
                 device: str = "auto", dtype: str = "float32", batch_size: int | str = 32,
                 **options: Any) -> None:
        if not model:
            raise UsageError("a transformers encoder needs a model: e.g. "
                             "hf-image:facebook/dinov2-small or hf-image:/path/to/folder")
        if pooling not in POOLINGS:
            raise UsageError(f"pooling={pooling}: use one of {', '.join(POOLINGS)}")
        config = load_config(model)
        vision = getattr(config, "vision_config", config)
        self.model, self.pooling, self.dtype = model, pooling, dtype
        self.device = resolve_device(device)
        self.batch_size = int(batch_size)
        self.shape = (n_frames, int(vision.hidden_size))
        # features made in another dtype are other features: another set
        self.name = f"{slug(model)}-{pooling}" + ("" if dtype == "float32" else f"-{dtype}")
        self.params: dict[str, Any] = {
            "model": model, "revision": model_revision(model, config),
            "model_type": config.model_type, "pooling": pooling, "dtype": dtype}
        self._setup(options)

    def _setup(self, options: dict[str, Any]) -> None:
        """Subclasses read their own options here."""

    def images(self, batch: np.ndarray) -> np.ndarray:
        """``[B, T, ...]`` inputs -> ``[B * T, S, S, 3]`` uint8 images."""
        return batch.reshape(-1, *batch.shape[2:])

    def forward(self, images: np.ndarray) -> np.ndarray:
        """``[n, S, S, 3]`` uint8 -> ``[n, D]`` float32: the model on frames in memory."""
        import torch

        module, preprocess, prefix = load_backbone(self.model, self.device, self.dtype)
        pixels = torch.from_numpy(np.ascontiguousarray(preprocess(images)))
        pixels = pixels.to(device=self.device, dtype=resolve_dtype(self.dtype))
        with torch.inference_mode():
            hidden = module(pixel_values=pixels).last_hidden_state
        pooled = hidden[:, 0] if self.pooling == "cls" else hidden[:, prefix:].mean(dim=1)
        return pooled.float().cpu().numpy()

    def encode(self, batch: np.ndarray) -> np.ndarray:
        b, t = batch.shape[:2]
        return in_batches(self.forward, self.images(batch), self.batch_size).reshape(b, t, -1)


class FlowBackboneEncoder(ImageBackboneEncoder):
    """``hf-flow:MODEL``: the same backbone on flow fields rendered as images."""

    modality = "flow"

    def _setup(self, options: dict[str, Any]) -> None:
        self.render = options.get("render", "hsv")
        self.flow_clip = float(options.get("flow_clip", 20.0))
        if self.render not in RENDERS:
            raise UsageError(f"render={self.render}: use one of {', '.join(RENDERS)}")
        self.name = f"{slug(self.model)}-{self.pooling}-{self.render}" + (
            "" if self.dtype == "float32" else f"-{self.dtype}")
        self.params.update(render=self.render, flow_clip=self.flow_clip)

    def images(self, batch: np.ndarray) -> np.ndarray:
        fields = batch.reshape(-1, *batch.shape[2:])
        return np.stack([render_flow(f, self.render, self.flow_clip) for f in fields])


class VideoMAEEncoder(ImageBackboneEncoder):
    """``videomae:MODEL``: clip-level tokens pooled back onto the T time steps."""

    def _setup(self, options: dict[str, Any]) -> None:
        config = load_config(self.model)
        self.clip_frames = int(config.num_frames)
        self.tubelet = int(config.tubelet_size)
        self.pooling = "mean"
        self.name = f"{slug(self.model)}-tubelets" + (
            "" if self.dtype == "float32" else f"-{self.dtype}")
        self.params.update(pooling="space-mean per tubelet", num_frames=self.clip_frames,
                           tubelet_size=self.tubelet)

    def sampled(self, t: int) -> np.ndarray:
        """Which of the T frames feed the model's ``num_frames`` inputs (evenly spread)."""
        return np.linspace(0, t - 1, self.clip_frames).round().astype(int)

    def step_tubelet(self, t: int) -> np.ndarray:
        """For each of the T steps, the tubelet whose sampled frames are nearest to it."""
        positions = self.sampled(t)
        nearest = np.abs(np.arange(t)[:, None] - positions[None]).argmin(axis=1)
        return nearest // self.tubelet

    def clips(self, videos: np.ndarray) -> np.ndarray:
        """``[n, T, S, S, 3]`` -> ``[n, T, D]``."""
        import torch
        from transformers import VideoMAEModel

        module = _videomae(self.model, self.device, self.dtype, VideoMAEModel)
        t = videos.shape[1]
        frames = videos[:, self.sampled(t)]
        size = int(module.config.image_size)
        pre = Preprocess(None, size)
        pixels = np.stack([pre(clip) for clip in frames])  # [n, F, 3, H, W]
        pixels = torch.from_numpy(pixels).to(device=self.device, dtype=resolve_dtype(self.dtype))
        with torch.inference_mode():
            hidden = module(pixel_values=pixels).last_hidden_state  # [n, F/tub * P, D]
        n_tub = self.clip_frames // self.tubelet
        per_tubelet = hidden.reshape(len(videos), n_tub, -1, hidden.shape[-1]).mean(dim=2)
        return per_tubelet[:, self.step_tubelet(t)].float().cpu().numpy()

    def encode(self, batch: np.ndarray) -> np.ndarray:
        clips_per_batch = max(1, self.batch_size // self.clip_frames)
        return in_batches(self.clips, batch, clips_per_batch)


@lru_cache(maxsize=2)
def _videomae(name_or_dir: str, device: str, dtype: str, cls: Any) -> Any:
    model = from_pretrained("VideoMAE", name_or_dir, cls)[0]
    return model.to(device=device, dtype=resolve_dtype(dtype)).eval()


# -- the study's encoder ---------------------------------------------------------

VIT_BASE = {"hidden_size": 768, "num_hidden_layers": 12, "num_attention_heads": 12,
            "intermediate_size": 3072, "image_size": 224, "patch_size": 16}


class _Steps:
    """Which time step each image of the current batch is (read by the embedding hook)."""

    index: Any = None


@lru_cache(maxsize=2)
def study_vit(seed: int, n_frames: int, device: str, config_items: tuple) -> tuple[Any, _Steps]:
    """The seeded random ViT; a hook adds the seeded temporal embedding ``[T, D]`` row of
    each image's time step to every token its embedding layer outputs."""
    import torch
    from transformers import ViTConfig, ViTModel

    config = ViTConfig(**dict(config_items))
    generator_state = torch.random.get_rng_state()
    torch.manual_seed(seed)
    model = ViTModel(config, add_pooling_layer=False).to(device).eval()
    temporal = torch.randn(n_frames, config.hidden_size, generator=torch.Generator()
                           .manual_seed(seed + 1)).to(device) * 0.02
    torch.random.set_rng_state(generator_state)  # the caller's randomness is untouched
    steps = _Steps()
    model.embeddings.register_forward_hook(
        lambda module, inputs, output: output + temporal[steps.index][:, None])
    return model, steps


class StudyViTEncoder:
    """``study-vit``: the study's randomly initialised ViT-Base/16 (seeded), for exact
    reproduction only; pretrained backbones are ``hf-image``."""

    modality = "rgb"
    render = None

    def __init__(self, n_frames: int = 18, seed: int | str = 0, device: str = "auto",
                 batch_size: int | str = 32, **options: Any) -> None:
        self.seed = int(seed)
        self.device = resolve_device(device)
        self.batch_size = int(batch_size)
        keys = ("hidden_size", "num_hidden_layers", "num_attention_heads",
                "intermediate_size", "image_size", "patch_size")
        self.config = {k: int(options.get(k, VIT_BASE[k])) for k in keys}
        self.n_frames = n_frames
        self.shape = (n_frames, self.config["hidden_size"])
        self.name = "study-vit" if self.render is None else f"study-vit-{self.render}"
        self.params = {"study": True, "seed": self.seed, **self.config, "init": "random",
                       "temporal_embedding": "seeded N(0, 0.02)", "pooling": "mean"}
        self.pre = Preprocess(None, self.config["image_size"], (0.5,) * 3, (0.5,) * 3)

    def images(self, batch: np.ndarray) -> np.ndarray:
        return batch.reshape(-1, *batch.shape[2:])

    def forward(self, images: np.ndarray, steps: np.ndarray) -> np.ndarray:
        import torch

        model, current = study_vit(self.seed, self.n_frames, self.device,
                                   tuple(sorted(self.config.items())))
        pixels = torch.from_numpy(self.pre(images)).to(self.device)
        current.index = torch.from_numpy(steps).to(self.device)
        with torch.inference_mode():
            hidden = model(pixel_values=pixels).last_hidden_state  # after the final norm
        return hidden[:, 1:].mean(dim=1).cpu().numpy()

    def encode(self, batch: np.ndarray) -> np.ndarray:
        b, t = batch.shape[:2]
        images = self.images(batch)
        steps = np.tile(np.arange(t), b)
        parts = [self.forward(images[i:i + self.batch_size], steps[i:i + self.batch_size])
                 for i in range(0, len(images), self.batch_size)]
        return np.concatenate(parts).astype(np.float32).reshape(b, t, -1)


class StudyViTFlowEncoder(StudyViTEncoder):
    """``study-vit-flow``: the study's ViT on HSV-rendered flow (its stored format)."""

    modality = "flow"
    render = "hsv"

    def images(self, batch: np.ndarray) -> np.ndarray:
        fields = batch.reshape(-1, *batch.shape[2:])
        return np.stack([render_flow(f, "hsv") for f in fields])
