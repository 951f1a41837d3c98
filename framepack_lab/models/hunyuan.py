"""HunyuanVideo FramePack (13B) as a backend for our generate loop, through diffusers.

The same plans, packer and sampler that drive the tiny model drive the real model here:
:class:`HunyuanBackend` wraps diffusers' ``HunyuanVideoFramepackTransformer3DModel``, the
HunyuanVideo VAE, the Llama and CLIP text encoders and the SigLIP image encoder, and implements the
backend protocol (``encode``, ``decode``, ``velocity``, ``kernels``, ``latent_channels``,
``latent_size``, ``device``).

    backend = load_hunyuan("/path/to/WEIGHTS_DIR")           # a GPU, weights on disk; no hub
    first = ...                                                # (H, W, 3) image, H, W multiples of 16
    backend.set_condition("a penguin dancing in the snow", first)
    result = generate(backend, first, plan=official_plan("inverted_anti_drifting", 4), steps=25)
    result.frames                                              # (1 + 4 * 36, H, W, 3) pixel frames

**Frames.** The VAE compresses space 8x and time 4x, the first frame alone (causal): ``T`` latent
frames decode to ``1 + 4 (T - 1)`` pixel frames, and ``1 + 4k`` pixel frames encode to ``1 + k``.
Every "frame" in our plans is a *latent* frame: the official 9-frame section is 33 pixel frames
(about 1.1 s at 30 fps). ``generate(...).latents`` holds latent frames, ``.frames`` pixel frames.
Frame sizes must be multiples of 16 pixels (8x VAE, then the (1, 2, 2) patch).

**Plans onto the transformer's inputs** (:func:`map_context`). diffusers takes one tensor per
kernel: ``latents_clean`` (k1 = (1, 2, 2), ``proj``), ``latents_history_2x`` (k2 = (2, 4, 4),
``proj_2x``) and ``latents_history_4x`` (k4 = (4, 8, 8), ``proj_4x``), each with its frame indices
(RoPE time positions). Attention is over the whole set, so the order of tokens does not matter; all
groups of one kernel (e.g. the start anchor and the post frame, both 1x) are concatenated along
time with their positions. The packer has already replicate-padded every group to its kernel, so
the concatenation is clean and diffusers' RoPE pooling (replicate-pad, average) sees each group's
own frames. What cannot be expressed is refused with a ``ValueError``: kernels other than k1 / k2 /
k4 (our packer builds e.g. k8 by pooling before k4, but diffusers embeds every history tensor at
full latent resolution and derives its RoPE grid from the noisy latents, so a pooled tensor cannot be
passed) and the ``ta`` / ``tc`` tails (single latent pixels). ``td`` is fine.

Our plans drop blocks that have no frames yet, but diffusers' forward needs all three tensors (with
any of them ``None`` it fails: its RoPE variables for that group are never set; diffusers 0.42).
A kernel with no group therefore gets one all-zero block of that kernel (1, 2 or 4 frames) placed
just past the step's last time position: the same zeros the official loops put in empty history
slots. So early steps of our own plans see a few filler tokens more than ``Step.token_count``.

**The official layout** (:func:`official_plan`). The official loops keep a fixed history of
1 + 2 + 16 slots and fill the ones not generated yet with zeros; our plans drop or replicate-pad
them instead. :func:`official_plan` writes the loop of the released checkpoints as one of our plans:
every slot is present, and empty slots point at a *blank* latent frame, one extra frame at the end
of the buffer that no step generates (so it stays zero) and that ``generate`` trims. Run through
``generate`` it reproduces ``HunyuanVideoFramepackPipeline``'s latents to float precision
(tests/test_hunyuan.py), given the same first-frame latent: the pipeline *samples* it from the VAE
posterior with the generator, our ``encode`` takes the posterior mean (the test hands the pipeline
ours).
diffusers' ``sampling_type="vanilla"`` is, in our terms, the F1 layout (time order, the first frame
as a permanent anchor), so that plan has ``order == "f1"``.

**Sampling.** Euler over ``linspace(1, 0)`` warped by the time shift, as diffusers'
``FlowMatchEulerDiscreteScheduler`` does. ``generate(shift=None)`` uses the official rule (mu linear
in the noisy token count, capped at ln 7), which is what the scheduler does with
``use_dynamic_shifting``; hunyuanvideo-community's scheduler config uses a fixed shift of 7 instead,
which equals the capped rule at real sizes (a 480p section has ~14,000 noisy tokens, mu > ln 7).
:meth:`HunyuanBackend.sampling_shift` returns what the loaded scheduler would use. Guidance is the
distilled guidance embedding (the transformer embeds ``guidance * 1000``; official demo 10); true
classifier-free guidance stays off (scale 1), as in the official demo.

**Weights folder** (:data:`LAYOUT`, checked by :func:`check_weights_dir` before anything loads)::

    WEIGHTS_DIR/
      transformer/        lllyasviel/FramePackI2V_HY   (or FramePack_F1_I2V_HY_20250503 for F1)
      vae/ text_encoder/ text_encoder_2/ tokenizer/ tokenizer_2/ [scheduler/]
                          hunyuanvideo-community/HunyuanVideo (those subfolders)
      image_encoder/ feature_extractor/
                          lllyasviel/flux_redux_bfl (those subfolders)

e.g. ``huggingface-cli download lllyasviel/FramePackI2V_HY --local-dir WEIGHTS_DIR/transformer``,
and for the other two repos download them once and link or copy their subfolders in. Everything is
loaded with ``from_pretrained(..., local_files_only=True)``: no hub access unless
``load_hunyuan(allow_download=True)`` is asked for (then weights come from, or go into, your HF
cache: about 50 GB).

**Which GPU runs what.** Estimates from parameter counts (transformer 13B = 26 GB in bf16, Llama 8B
text encoder = 15 GB, VAE, CLIP and SigLIP about 1.5 GB) plus activations at 480p; **not measured
in this project**, which has no GPU. ``offload``:

* ``"none"``: everything resident, ~48 GB free (80 GB A100 / H100, 48 GB cards borderline);
* ``"model"``: ``enable_model_cpu_offload``, one whole model on the GPU at a time: the 13B
  transformer alone needs ~32 GB (40 GB and up);
* ``"group"``: diffusers' group offloading (leaf level, CUDA streams): weights stream layer by layer,
  ~8 GB free is the floor we assume (so 12, 16 and 24 GB cards), slower than the above; the host
  needs about 48 GB of RAM to hold the weights;
* ``"auto"`` (default): the lightest of these that fits the free GPU memory.

bf16 everywhere by default and VAE tiling on. The official FramePack demo streams its own way and
runs in 6 GB; diffusers' offloading is not that code. On CPU the loader refuses ``"cuda"``; a CPU
run of the real model is possible in principle (``device="cpu"``, ``offload="none"``, ~50 GB RAM)
but would take hours per section.

Tests and the notebook's CI run use :func:`tiny_backend`: the same classes with tiny random
weights and in-memory tokenizers. They check the plumbing, not the pictures.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import torch

from ..backend import BackendBase
from ..frames import as_image
from ..packing import PackedContext, PackedGroup
from ..plan import Group, Plan, Step, inverted_padding
from ..schedule import Kernel, Schedule, as_schedule

K1, K2, K4 = Kernel.k(1), Kernel.k(2), Kernel.k(4)
KERNELS = frozenset({K1, K2, K4})
# kernel -> (latents argument, indices argument) of HunyuanVideoFramepackTransformer3DModel.forward
INPUTS = {
    K1: ("latents_clean", "indices_latents_clean"),
    K2: ("latents_history_2x", "indices_latents_history_2x"),
    K4: ("latents_history_4x", "indices_latents_history_4x"),
}
SUPPORTED = ("k1 (1, 2, 2), k2 (2, 4, 4) and k4 (4, 8, 8), with no tail or tail 'td'; e.g. the official "
             "'f1k1_x_g9_f1k1f2k2f16k4_td'")
OFFICIAL_HISTORY = (1, 2, 16)  # 1x, 2x, 4x history slots of the released checkpoints
OFFICIAL_WINDOW = 9            # latent frames per section (33 pixel frames)
DEFAULT_GUIDANCE = 10.0        # distilled guidance of the official demo
OFFLOAD_MODES = ("auto", "none", "model", "group")
# Free GPU memory (GB) each offload mode needs at 480p in bf16: ESTIMATES, not measured (no GPU here)
MEMORY_GB = {"none": 48.0, "model": 32.0, "group": 8.0}
TEMPORAL, SPATIAL = 4, 8       # VAE compression of HunyuanVideo


# ------------------------------------------------------------------------------- frame maths
def pixel_frames(latent_frames: int) -> int:
    """Pixel frames decoded from ``latent_frames`` latent frames: ``1 + 4 (T - 1)``."""
    return 1 + TEMPORAL * (latent_frames - 1)


def latent_frames(pixel_frames: int) -> int:
    """Latent frames of ``1 + 4k`` pixel frames: ``1 + k`` (other counts raise ``ValueError``)."""
    if pixel_frames < 1 or (pixel_frames - 1) % TEMPORAL:
        raise ValueError(f"{pixel_frames} pixel frames: HunyuanVideo's VAE takes 1 + 4k frames (1, 5, 9, 33, ...): "
                         "the first frame alone, then groups of 4")
    return 1 + (pixel_frames - 1) // TEMPORAL


# ------------------------------------------------------------------------- plans -> inputs
def check_schedule(schedule: Schedule | str) -> Schedule:
    """Refuse a schedule the checkpoint cannot run (``ValueError`` naming what it supports)."""
    s = as_schedule(schedule)
    bad = sorted({b.kernel for b in s.blocks if b.kernel not in KERNELS})
    if bad:
        names = ", ".join(f"{k.name} {k.size}" for k in bad)
        raise ValueError(f"schedule {s.name!r} needs kernel {names}, which the HunyuanVideo FramePack checkpoint "
                         f"has no patch embedding for; it supports {SUPPORTED}")
    if s.tail in ("ta", "tc"):
        raise ValueError(f"schedule {s.name!r} uses tail option {s.tail!r}, which packs old frames into single "
                         f"latent pixels that diffusers' transformer inputs cannot take; it supports {SUPPORTED}")
    return s


def _check_group(g: PackedGroup) -> None:
    if g.tail is not None:
        raise ValueError(f"a {g.tail!r} tail group (frames {g.frames[0]}..{g.frames[-1]}) cannot be passed to "
                         f"HunyuanVideo FramePack; it supports {SUPPORTED}")
    if g.kernel not in KERNELS or g.embed_kernel != g.kernel:
        raise ValueError(f"kernel {g.kernel.name} {g.kernel.size} is not one of the HunyuanVideo FramePack "
                         f"checkpoint's kernels (it would be pooled, then embedded with {g.embed_kernel.name}, which "
                         f"diffusers' inputs cannot express); it supports {SUPPORTED}")


def _time_positions(g: PackedGroup) -> list[int]:
    """One RoPE time position per latent frame of ``g.latents``: the packer replicate-padded the
    group up to its kernel, so the padding frames repeat the last position."""
    t = g.latents.shape[2]
    return list(g.positions) + [g.positions[-1]] * (t - len(g.positions))


def map_context(context: PackedContext, x_t: torch.Tensor) -> dict[str, torch.Tensor]:
    """The transformer inputs of one packed step.

    Args:
        context: the step's :class:`~framepack_lab.packing.PackedContext` (k1 / k2 / k4 groups).
        x_t: the noisy section ``(B, C, S, h, w)`` (for batch, channels and device).

    Returns:
        ``indices_latents (S,)`` and, per kernel, ``latents_clean (B, C, t1, h, w)`` +
        ``indices_latents_clean (t1,)``, ``latents_history_2x (B, C, t2, h2, w2)`` +
        ``indices_latents_history_2x (t2,)``, ``latents_history_4x (B, C, t4, h4, w4)`` +
        ``indices_latents_history_4x (t4,)``: all groups of a kernel concatenated along time (sorted
        by position), ``t`` a multiple of the kernel's frames and ``h2, w2`` / ``h4, w4``
        replicate-padded to it. A kernel without groups gets one zero block of its frame count,
        placed after the step's last position (diffusers' forward needs all three).
    """
    B, C = x_t.shape[:2]
    h, w = context.latent_size
    by_kernel: dict[Kernel, list[PackedGroup]] = {k: [] for k in INPUTS}
    for g in context.groups:
        _check_group(g)
        by_kernel[g.kernel].append(g)
    end = max([*context.positions, *(p for g in context.groups for p in g.positions)])
    as_index = lambda xs: torch.tensor(xs, dtype=torch.long, device=x_t.device)  # noqa: E731
    inputs = {"indices_latents": as_index(list(context.positions))}
    for kernel, (latents_name, indices_name) in INPUTS.items():
        groups = sorted(by_kernel[kernel], key=lambda g: g.positions[0])
        if groups:
            latents = torch.cat([g.latents for g in groups], dim=2)
            positions = [p for g in groups for p in _time_positions(g)]
        else:  # a filler block, as the official loops fill empty history slots
            latents = x_t.new_zeros(B, C, kernel.pf, h, w)
            positions, end = list(range(end + 1, end + 1 + kernel.pf)), end + kernel.pf
        inputs[latents_name] = latents.to(x_t.device)
        inputs[indices_name] = as_index(positions)
    return inputs


def official_plan(order: str, n_sections: int, window: int = OFFICIAL_WINDOW) -> Plan:
    """The loop of ``HunyuanVideoFramepackPipeline`` (and the official demo) as one of our plans.

    Every step sees the start frame as a 1x anchor at position 0 and a fixed 1 + 2 + 16 history
    (1x, 2x, 4x); slots with no frame yet point at the blank frame ``n_frames`` (the extra frame
    of ``total_frames``), which stays zero and is trimmed by ``generate``.

    Args:
        order: diffusers' ``sampling_type``: ``"inverted_anti_drifting"`` (reverse time, history =
            the frames right after the section; RoPE gap capped by :func:`~framepack_lab.plan.inverted_padding`)
            or ``"vanilla"`` (time order, history = the 19 frames before the section, positions fixed:
            anchor 0, history 1..19, section 20..; our order name for it is ``"f1"``).
        n_sections: sections of ``window`` latent frames; ``n_frames = 1 + n_sections * window``.
        window: diffusers' ``latent_window_size``.

    Returns:
        A :class:`~framepack_lab.plan.Plan` with ``total_frames = n_frames + 1``.
    """
    if order not in ("inverted_anti_drifting", "vanilla"):
        raise ValueError(f"official_plan: order must be diffusers' 'inverted_anti_drifting' or 'vanilla', "
                         f"got {order!r}")
    if not isinstance(n_sections, int) or n_sections < 1 or not isinstance(window, int) or window < 1:
        raise ValueError(f"official_plan needs n_sections >= 1 and window >= 1, got {n_sections}, {window}")
    W, n_hist = window, sum(OFFICIAL_HISTORY)
    n_frames = 1 + n_sections * W
    blank = n_frames
    if order == "inverted_anti_drifting":
        schedule = as_schedule(f"f1k1_x_g{W}_f1k1f2k2f16k4_td")
        slot_blocks, role = schedule.right.near, "right"
    else:
        schedule = as_schedule(f"f1k1_x_f16k4f2k2f1k1_g{W}")
        slot_blocks, role = schedule.left.near, "left"
    anchor = Group(K1, (0,), (0,), "left", schedule.left.far[0])
    steps = []
    for i in range(n_sections):
        if order == "inverted_anti_drifting":
            k = n_sections - 1 - i  # sections from the end of the video backwards
            start = 1 + inverted_padding(n_sections)[i] * W  # section position after the anchor
            generated = tuple(range(1 + k * W, 1 + (k + 1) * W))
            slots = [f if f < n_frames else blank for f in range(generated[-1] + 1, generated[-1] + 1 + n_hist)]
            slot_positions = range(start + W, start + W + n_hist)
            positions = tuple(range(start, start + W))
        else:
            generated = tuple(range(1 + i * W, 1 + (i + 1) * W))
            slots = [f if f >= 0 else blank for f in range(generated[0] - n_hist, generated[0])]
            slot_positions = range(1, 1 + n_hist)
            positions = tuple(range(1 + n_hist, 1 + n_hist + W))
        groups, j = [anchor], 0
        for block in slot_blocks:
            frames, pos = tuple(slots[j:j + block.frames]), tuple(slot_positions[j:j + block.frames])
            groups.append(Group(block.kernel, frames, pos, role, block))
            j += block.frames
        steps.append(Step(i, generated, positions, tuple(groups), schedule))
    name = "inverted_anti_drifting" if order == "inverted_anti_drifting" else "f1"
    return Plan(name, schedule, n_frames, n_frames + 1, tuple(steps))


# ------------------------------------------------------------------------------ condition
@dataclass
class HunyuanCondition:
    """What the transformer is conditioned on besides the video; computed once per video.

    Attributes:
        prompt_embeds: ``(B, L, D_llama)`` Llama hidden states (third from last layer), the prompt
            template's system part cropped off; ``prompt_mask``: ``(B, L)``, 1 for real tokens.
        pooled: ``(B, D_clip)`` CLIP text pooled output.
        image_embeds: ``(B, N, D_siglip)`` SigLIP last hidden state of the first frame.
        guidance: distilled guidance scale (embedded as ``guidance * 1000``).
        prompt: the prompt text, for display.
    """

    prompt_embeds: torch.Tensor
    prompt_mask: torch.Tensor
    pooled: torch.Tensor
    image_embeds: torch.Tensor
    guidance: float
    prompt: str = ""


def _image_tensor(image) -> torch.Tensor:
    """``(H, W, 3)`` uint8 or float in [0, 1] (numpy or torch) -> ``(1, 3, H, W)`` float32 in [-1, 1]."""
    return (2.0 * as_image(image, "image") - 1.0).permute(2, 0, 1)[None]


# -------------------------------------------------------------------------------- backend
class HunyuanBackend(BackendBase):
    """HunyuanVideo FramePack components as a backend for :func:`framepack_lab.generate.generate`.

    Build it with :func:`load_hunyuan` (weights folder) or :func:`tiny_backend` (tests). The
    components live in a ``HunyuanVideoFramepackPipeline`` (``self.pipe``) so diffusers' offloading
    hooks apply; only the components are used, never the pipeline's own loop. It has no optional
    features: HunyuanVideo FramePack was not trained with history noise or history dropout, so
    ``generate`` refuses ``history_noise`` and ``history_guidance`` for it.
    """

    kernels = KERNELS

    def __init__(self, pipe, offload: str = "none", name: str = "hunyuan"):
        self.pipe, self.offload, self.name = pipe, offload, name
        self.cond: HunyuanCondition | None = None

    # ------------------------------------------------------------------ components
    @property
    def components(self) -> dict:
        """The pipeline components (``transformer``, ``vae``, ``text_encoder``, ... ``scheduler``)."""
        return dict(self.pipe.components)

    @property
    def transformer(self):
        return self.pipe.transformer

    @property
    def vae(self):
        return self.pipe.vae

    @property
    def device(self) -> torch.device:
        """Where inputs go (the GPU with offloading, even while weights rest on the CPU)."""
        return torch.device(self.pipe._execution_device)

    @property
    def dtype(self) -> torch.dtype:
        return self.transformer.dtype

    @property
    def latent_channels(self) -> int:
        return int(self.transformer.config.in_channels)

    def latent_size(self, height: int, width: int) -> tuple[int, int]:
        """Latent ``(h, w) = (H / 8, W / 8)``; H and W must be positive multiples of 16 pixels."""
        f = SPATIAL * 2
        if height % f or width % f or height < f or width < f:
            raise ValueError(f"frame size {height}x{width}: HunyuanVideo needs height and width that are positive "
                             f"multiples of {f} pixels (the VAE downsamples by {SPATIAL}, the patch kernel by 2); "
                             "e.g. 480x640 or 512x512; resize or crop the first frame")
        return height // SPATIAL, width // SPATIAL

    # --------------------------------------------------------------------- VAE
    @torch.no_grad()
    def encode(self, frames: torch.Tensor) -> torch.Tensor:
        """Frames ``(B, T, H, W, 3)`` in [0, 1], T = 1 + 4k -> latents ``(B, C, 1 + k, H/8, W/8)``
        (scaled by the VAE's ``scaling_factor``; the posterior mean, so encoding is deterministic)."""
        B, T, H, W, _ = frames.shape
        self.latent_size(H, W)
        latent_frames(T)
        x = (2.0 * frames.float() - 1.0).permute(0, 4, 1, 2, 3)  # (B, 3, T, H, W) in [-1, 1]
        z = self.vae.encode(x.to(self.device, self.vae.dtype)).latent_dist.mode()
        return (z * self.vae.config.scaling_factor).float()

    @torch.no_grad()
    def decode(self, latents: torch.Tensor) -> torch.Tensor:
        """Latents ``(B, C, T, h, w)`` -> frames ``(B, 1 + 4 (T - 1), 8h, 8w, 3)`` in [0, 1]."""
        z = latents.to(self.device, self.vae.dtype) / self.vae.config.scaling_factor
        x = self.vae.decode(z).sample  # (B, 3, T', H, W) in [-1, 1]
        return ((x.float() + 1.0) / 2.0).clamp(0, 1).permute(0, 2, 3, 4, 1)

    # --------------------------------------------------------------- condition
    @torch.no_grad()
    def condition(self, prompt: str, image, guidance: float = DEFAULT_GUIDANCE,
                  max_sequence_length: int = 256) -> HunyuanCondition:
        """Encode the prompt (Llama + CLIP) and the first frame (SigLIP) once.

        Args:
            prompt: the text prompt.
            image: the first frame ``(H, W, 3)``, uint8 or float in [0, 1].
            guidance: distilled guidance scale (official demo 10, diffusers' default 6).
            max_sequence_length: Llama tokens kept after the template (diffusers' default 256).
        """
        from diffusers.pipelines.hunyuan_video.pipeline_hunyuan_video_framepack import DEFAULT_PROMPT_TEMPLATE

        if not isinstance(prompt, str):
            raise ValueError(f"prompt must be a string, got {type(prompt).__name__}")
        p, dev, dtype = self.pipe, self.device, self.dtype
        template, crop = DEFAULT_PROMPT_TEMPLATE["template"], DEFAULT_PROMPT_TEMPLATE["crop_start"]
        tok = p.tokenizer(template.format(prompt), max_length=max_sequence_length + crop, padding="max_length",
                          truncation=True, return_tensors="pt", return_attention_mask=True)
        ids, mask = tok.input_ids.to(dev), tok.attention_mask.to(dev)
        hidden = p.text_encoder(input_ids=ids, attention_mask=mask, output_hidden_states=True).hidden_states[-3]
        tok2 = p.tokenizer_2(prompt, padding="max_length", max_length=77, truncation=True, return_tensors="pt")
        pooled = p.text_encoder_2(tok2.input_ids.to(dev), output_hidden_states=False).pooler_output
        pixels = _image_tensor(image)  # (1, 3, H, W) in [-1, 1]
        features = p.feature_extractor(images=(pixels + 1) / 2, return_tensors="pt", do_rescale=False)
        features = features.to(device=dev, dtype=p.image_encoder.dtype)
        image_embeds = p.image_encoder(**features).last_hidden_state
        return HunyuanCondition(hidden[:, crop:].to(dtype), mask[:, crop:].to(dtype), pooled.to(dtype),
                                image_embeds.to(dtype), float(guidance), prompt)

    def set_condition(self, prompt: str, image, guidance: float = DEFAULT_GUIDANCE,
                      max_sequence_length: int = 256) -> HunyuanCondition:
        """Compute :meth:`condition` and keep it: ``velocity`` uses it when ``generate`` passes none."""
        self.cond = self.condition(prompt, image, guidance, max_sequence_length)
        return self.cond

    # ---------------------------------------------------------------- sampling
    def check_plan(self, plan: Plan) -> None:
        """Refuse a plan the checkpoint cannot run before anything is computed (``ValueError``
        naming what it supports); :func:`~framepack_lab.generate.generate` calls it first."""
        check_schedule(plan.schedule)
        for step in plan.steps:
            for g in step.groups:
                if g.tail is not None or g.kernel not in KERNELS:
                    raise ValueError(f"plan {plan.order!r} step {step.index} packs frames {g.frames} with "
                                     f"{g.tail or g.kernel.name}; it supports {SUPPORTED}")

    def sampling_shift(self, noisy_tokens: int) -> float:
        """The time shift the loaded scheduler would use for a section of ``noisy_tokens`` tokens
        (dynamic: ``e**mu`` with mu capped at ln 7, as :func:`framepack_lab.sampler.dynamic_shift`;
        static: its ``shift``). Pass it as ``generate(shift=...)`` to follow the scheduler exactly."""
        cfg = self.pipe.scheduler.config
        if not cfg.get("use_dynamic_shifting", False):
            return float(cfg.get("shift", 1.0))
        lo, hi = cfg.get("base_image_seq_len", 256), cfg.get("max_image_seq_len", 4096)
        mu_lo, mu_hi = cfg.get("base_shift", 0.5), cfg.get("max_shift", 1.15)
        mu = mu_lo + (mu_hi - mu_lo) * (noisy_tokens - lo) / (hi - lo)
        return math.exp(min(mu, math.log(7.0)))

    @torch.no_grad()
    def velocity(self, x_t: torch.Tensor, sigma: torch.Tensor, context: PackedContext,
                 cond: HunyuanCondition | None = None) -> torch.Tensor:
        """Flow velocity ``v = eps - x0`` for the noisy section ``x_t (B, C, S, h, w)`` at ``sigma (B,)``.

        ``cond``: a :class:`HunyuanCondition` (default: the one from :meth:`set_condition`).
        """
        cond = cond if cond is not None else self.cond
        if cond is None:
            raise ValueError("no condition: call backend.set_condition(prompt, first_frame) before generating "
                             "(or pass cond=backend.condition(prompt, first_frame) to generate)")
        dev, dtype = self.device, self.dtype
        cache = context.__dict__.setdefault("_hunyuan_inputs", {})
        key = (tuple(x_t.shape[:2]), str(dev), dtype)
        if key not in cache:
            cache[key] = {k: v.to(dev, dtype) if k.startswith("latents") else v.to(dev)
                          for k, v in map_context(context, x_t).items()}
        B = x_t.shape[0]
        guidance = torch.tensor([cond.guidance] * B, dtype=dtype, device=dev) * 1000.0
        out = self.transformer(
            hidden_states=x_t.to(dev, dtype), timestep=sigma.to(dev, torch.float32) * 1000.0,
            encoder_hidden_states=cond.prompt_embeds, encoder_attention_mask=cond.prompt_mask,
            pooled_projections=cond.pooled, image_embeds=cond.image_embeds, guidance=guidance,
            return_dict=False, **cache[key])[0]
        return out.float()


# -------------------------------------------------------------------------------- loading
class Part(NamedTuple):
    """One subfolder of the weights folder."""

    kind: str       # "model" | "tokenizer" | "processor" | "scheduler"
    what: str       # the class it holds
    repo: str       # where it comes from on the Hugging Face hub
    subfolder: str | None


_HY = "hunyuanvideo-community/HunyuanVideo"
_REDUX = "lllyasviel/flux_redux_bfl"
LAYOUT: dict[str, Part] = {
    "transformer": Part("model", "HunyuanVideoFramepackTransformer3DModel", "lllyasviel/FramePackI2V_HY", None),
    "vae": Part("model", "AutoencoderKLHunyuanVideo", _HY, "vae"),
    "text_encoder": Part("model", "LlamaModel", _HY, "text_encoder"),
    "text_encoder_2": Part("model", "CLIPTextModel", _HY, "text_encoder_2"),
    "tokenizer": Part("tokenizer", "Llama tokenizer", _HY, "tokenizer"),
    "tokenizer_2": Part("tokenizer", "CLIP tokenizer", _HY, "tokenizer_2"),
    "image_encoder": Part("model", "SiglipVisionModel", _REDUX, "image_encoder"),
    "feature_extractor": Part("processor", "SiglipImageProcessor", _REDUX, "feature_extractor"),
}
OPTIONAL = {"scheduler": Part("scheduler", "FlowMatchEulerDiscreteScheduler", _HY, "scheduler")}
_NEEDS = {
    "model": (("config.json",), ("*.safetensors", "*.bin")),
    "tokenizer": (("tokenizer.json", "tokenizer_config.json", "tokenizer.model", "vocab.json"),),
    "processor": (("preprocessor_config.json",),),
    "scheduler": (("scheduler_config.json",),),
}


def _layout_text() -> str:
    lines = [f"  {name + '/':<19} {p.what} (hub: {p.repo}{', ' + p.subfolder if p.subfolder else ''})"
             for name, p in {**LAYOUT, **OPTIONAL}.items()]
    return "expected layout of WEIGHTS_DIR (scheduler/ optional):\n" + "\n".join(lines)


def _part_problem(folder: Path, part: Part) -> str | None:
    if not folder.is_dir():
        return f"{folder.name}/ is missing ({part.what}, from {part.repo})"
    for alternatives in _NEEDS[part.kind]:
        if not any(next(folder.glob(pattern), None) for pattern in alternatives):
            return f"{folder.name}/ has none of {', '.join(alternatives)}"
    return None


def check_weights_dir(weights_dir: str | Path) -> Path:
    """Check the weights folder up front; ``FileNotFoundError`` listing everything missing.

    Also refuses a transformer that is not a FramePack one (e.g. plain HunyuanVideo's): its
    ``config.json`` must have ``has_clean_x_embedder`` (the 1x / 2x / 4x history embeddings).
    """
    root = Path(weights_dir).expanduser()
    if not root.exists():
        raise FileNotFoundError(
            f"no weights folder at {root}. Download the HunyuanVideo FramePack weights there (see the "
            f"framepack_lab.models.hunyuan docstring), or call load_hunyuan(allow_download=True) on a machine with "
            f"network access.\n{_layout_text()}")
    if not root.is_dir():
        raise FileNotFoundError(f"{root} is a file; WEIGHTS_DIR must be a folder.\n{_layout_text()}")
    problems = [msg for name, part in LAYOUT.items() if (msg := _part_problem(root / name, part))]
    if (root / "scheduler").exists() and (msg := _part_problem(root / "scheduler", OPTIONAL["scheduler"])):
        problems.append(msg)
    if problems:
        hint = ""
        if (root / "config.json").exists():
            hint = (f"\n{root} itself has a config.json: it looks like ONE model's folder. Point WEIGHTS_DIR at the "
                    "folder that holds transformer/, vae/, text_encoder/, ... instead.")
        raise FileNotFoundError(f"weights folder {root} has the wrong layout:\n  - " + "\n  - ".join(problems)
                                + hint + "\n" + _layout_text())
    try:
        config = json.loads((root / "transformer" / "config.json").read_text())
    except json.JSONDecodeError as e:
        raise ValueError(f"{root / 'transformer' / 'config.json'} is not valid JSON ({e}); download it again") from e
    if not config.get("has_clean_x_embedder"):
        raise FileNotFoundError(
            f"{root / 'transformer'} is not a FramePack transformer (its config.json has no has_clean_x_embedder; "
            f"class {config.get('_class_name', '?')}): plain HunyuanVideo cannot take packed history. Put "
            "lllyasviel/FramePackI2V_HY (or FramePack_F1_I2V_HY_20250503) in transformer/.")
    return root


def choose_offload(offload: str, free_gb: float | None) -> str:
    """Resolve ``offload`` against free GPU memory (``None``: on the CPU, nothing to check).

    ``"auto"`` picks the lightest of none / model / group that fits :data:`MEMORY_GB`; an explicit
    mode that does not fit raises ``ValueError`` naming one that does. Estimates, not measurements.
    """
    if offload not in OFFLOAD_MODES:
        raise ValueError(f"offload must be one of {', '.join(OFFLOAD_MODES)}, got {offload!r}")
    if free_gb is None:
        if offload in ("model", "group"):
            raise ValueError(f"offload={offload!r} moves weights between the CPU and a GPU; on the CPU use "
                             "offload='none' (or 'auto')")
        return "none"
    fits = [m for m in ("none", "model", "group") if free_gb >= MEMORY_GB[m]]
    if offload == "auto":
        if not fits:
            raise ValueError(
                f"too little GPU memory: {free_gb:.1f} GB free, and even offload='group' needs about "
                f"{MEMORY_GB['group']:.0f} GB (an estimate). Close other GPU programs, use a larger GPU, or try "
                "the official FramePack demo, which streams weights in about 6 GB.")
        return fits[0]
    if offload not in fits:
        advice = f"use offload={fits[0]!r}" if fits else "free GPU memory or use a larger GPU"
        raise ValueError(f"too little GPU memory for offload={offload!r}: {free_gb:.1f} GB free, about "
                         f"{MEMORY_GB[offload]:.0f} GB needed (an estimate, not measured); {advice}")
    return offload


def _check_device(device: str | torch.device) -> torch.device:
    device = torch.device(device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(
            "device 'cuda' was asked for but this machine has no CUDA GPU (torch.cuda.is_available() is False). "
            "The 13B model needs a GPU: run on one with a CUDA build of torch (make setup TORCH_SPEC=... , see the "
            "Makefile), or use the tiny stand-in (framepack_lab.models.hunyuan.tiny_backend) or the embedded "
            "model (framepack_lab.models.tiny.load_tiny) here.")
    if device.type not in ("cuda", "cpu"):
        raise ValueError(f"device must be 'cuda' or 'cpu', got {device}")
    return device


def _free_gb(device: torch.device) -> float | None:
    if device.type != "cuda":
        return None
    free, _ = torch.cuda.mem_get_info(device)
    return free / 1024**3


MIN_VOCAB = 1000  # the real tokenizers have 49,408 (CLIP) and 128,256 (Llama 3) tokens


def _check_tokenizer(tokenizer, name: str, root: Path | None) -> None:
    """An incomplete tokenizer folder (or an uncached one offline) can load as a near-empty
    tokenizer without any error; refuse it instead of encoding every prompt as unknown tokens."""
    if len(tokenizer) < MIN_VOCAB:
        where = root / name if root is not None else f"the hub / HF cache ({LAYOUT[name].repo})"
        raise ValueError(f"{name} from {where} has only {len(tokenizer)} tokens: its files are incomplete. Copy the "
                         f"whole {name}/ folder of {LAYOUT[name].repo} (tokenizer.json, tokenizer_config.json, "
                         "special_tokens_map.json, ...) again.")


def _load_components(root: Path | None, dtype: torch.dtype, allow_download: bool) -> dict:
    """``from_pretrained`` every part from ``root`` (local files only), or from the hub / HF cache."""
    import transformers
    from diffusers import (AutoencoderKLHunyuanVideo, FlowMatchEulerDiscreteScheduler,
                           HunyuanVideoFramepackTransformer3DModel)

    new_kw = tuple(int(v) for v in transformers.__version__.split(".")[:2]) >= (4, 56)
    hf_dtype = {"dtype": dtype} if new_kw else {"torch_dtype": dtype}
    classes = {
        "transformer": (HunyuanVideoFramepackTransformer3DModel, {"torch_dtype": dtype}),
        "vae": (AutoencoderKLHunyuanVideo, {"torch_dtype": dtype}),
        "text_encoder": (transformers.LlamaModel, hf_dtype),
        "text_encoder_2": (transformers.CLIPTextModel, hf_dtype),
        "tokenizer": (transformers.AutoTokenizer, {}),
        "tokenizer_2": (transformers.AutoTokenizer, {}),
        "image_encoder": (transformers.SiglipVisionModel, hf_dtype),
        "feature_extractor": (transformers.SiglipImageProcessor, {}),
        "scheduler": (FlowMatchEulerDiscreteScheduler, {}),
    }
    components = {}
    for name, (cls, kw) in classes.items():
        part = LAYOUT.get(name) or OPTIONAL[name]
        if root is not None:
            if name == "scheduler" and not (root / name).exists():
                continue
            components[name] = cls.from_pretrained(str(root / name), local_files_only=True, **kw)
        else:
            sub = {"subfolder": part.subfolder} if part.subfolder else {}
            components[name] = cls.from_pretrained(part.repo, **sub, **kw)
        if part.kind == "tokenizer":
            _check_tokenizer(components[name], name, root)
    if "scheduler" not in components:  # the official rule: dynamic shift, mu capped at ln 7
        components["scheduler"] = FlowMatchEulerDiscreteScheduler(use_dynamic_shifting=True)
    return components


def backend_from_components(components: dict, device: str | torch.device = "cpu", offload: str = "none",
                            vae_tiling: bool = True) -> HunyuanBackend:
    """Wrap loaded components (a dict with the pipeline's component names) as a backend.

    ``offload``: ``"none"`` (move everything to ``device``), ``"model"`` (diffusers'
    ``enable_model_cpu_offload``) or ``"group"`` (``enable_group_offload``, leaf level, CUDA streams).
    """
    from diffusers import FlowMatchEulerDiscreteScheduler, HunyuanVideoFramepackPipeline

    if offload not in ("none", "model", "group"):
        raise ValueError(f"offload must be 'none', 'model' or 'group' here, got {offload!r}")
    device = _check_device(device)
    if offload != "none" and device.type != "cuda":
        raise ValueError(f"offload={offload!r} needs device='cuda'; on the CPU use offload='none'")
    components = dict(components)
    components.setdefault("scheduler", FlowMatchEulerDiscreteScheduler(use_dynamic_shifting=True))
    missing = sorted(set(LAYOUT) - set(components))
    if missing:
        raise ValueError(f"components missing: {', '.join(missing)}")
    pipe = HunyuanVideoFramepackPipeline(**components)
    if vae_tiling:
        pipe.vae.enable_tiling()
    for module in pipe.components.values():
        if isinstance(module, torch.nn.Module):
            module.eval()
    if offload == "model":
        pipe.enable_model_cpu_offload(device=device)
    elif offload == "group":
        pipe.enable_group_offload(onload_device=device, offload_device=torch.device("cpu"),
                                  offload_type="leaf_level", use_stream=True)
    else:
        pipe.to(device)
    return HunyuanBackend(pipe, offload)


def load_hunyuan(weights_dir: str | Path | None = None, *, device: str | torch.device = "cuda",
                 dtype: torch.dtype = torch.bfloat16, offload: str = "auto", vae_tiling: bool = True,
                 allow_download: bool = False) -> HunyuanBackend:
    """Load HunyuanVideo FramePack as a backend.

    Args:
        weights_dir: the folder of :data:`LAYOUT` (checked first; see the module docstring).
        device: ``"cuda"`` (default; refused with advice when there is no GPU) or ``"cpu"``.
        dtype: weights dtype for every model (default bf16).
        offload: ``"auto"`` | ``"none"`` | ``"model"`` | ``"group"``; see :func:`choose_offload`.
        vae_tiling: decode (and encode) large frames in tiles to bound VAE memory.
        allow_download: with no ``weights_dir``, fetch from the Hugging Face hub (or your HF cache);
            off by default so nothing touches the network unless you ask.

    Returns:
        A :class:`HunyuanBackend`; call ``set_condition(prompt, first_frame)`` before generating.
    """
    if offload not in OFFLOAD_MODES:
        raise ValueError(f"offload must be one of {', '.join(OFFLOAD_MODES)}, got {offload!r}")
    if not isinstance(dtype, torch.dtype) or not dtype.is_floating_point:
        raise ValueError(f"dtype must be a floating torch dtype (torch.bfloat16, torch.float16, torch.float32), "
                         f"got {dtype!r}")
    if weights_dir is None and not allow_download:
        raise ValueError("no weights_dir given and allow_download=False: pass the folder that holds the HunyuanVideo "
                         "FramePack weights (load_hunyuan('/path/to/WEIGHTS_DIR')), or allow_download=True to fetch "
                         f"about 50 GB from the Hugging Face hub into your HF cache.\n{_layout_text()}")
    root = check_weights_dir(weights_dir) if weights_dir is not None else None
    device = _check_device(device)
    mode = choose_offload(offload, _free_gb(device))
    components = _load_components(root, dtype, allow_download)
    return backend_from_components(components, device, mode, vae_tiling)


# ------------------------------------------------------------------- tiny random stand-in
TINY_WORDS = ("a the of and in on with to is at by from its their this that it his her "
              "cat dog bird penguin person man woman girl boy car ball sprite robot fish horse "
              "walks runs jumps dances flies swims moves turns spins falls rolls waves smiles looks "
              "snow grass sky water road street room forest beach city field garden stage "
              "red blue green yellow white black small big bright dark slow fast gentle camera "
              "video shows scene light style background close up wide shot").split()


def _tiny_tokenizer(max_length: int):
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    specials = ["<pad>", "<unk>", "<s>", "</s>"]
    vocab = {w: i for i, w in enumerate(specials + list(TINY_WORDS))}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    return PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="<pad>", unk_token="<unk>", bos_token="<s>",
                                   eos_token="</s>", model_max_length=max_length)


def tiny_components(seed: int = 0, latent_channels: int = 4) -> dict:
    """Every component at toy size with random weights, built in memory (no files, no network).

    Same classes as the real model: a 1+1-layer FramePack transformer (heads 2 x 16, RoPE axes
    (4, 6, 6)), a 4-block HunyuanVideo VAE (8x space, 4x time), a 3-layer Llama, a 1-layer CLIP
    text model, a 1-layer SigLIP on 32x32 crops, word-level tokenizers, and a dynamic-shift scheduler.
    """
    with torch.random.fork_rng(devices=[]):  # seed the weights without touching the caller's RNG
        torch.manual_seed(seed)
        return _tiny_components(latent_channels)


def _tiny_components(latent_channels: int) -> dict:
    import transformers
    from diffusers import (AutoencoderKLHunyuanVideo, FlowMatchEulerDiscreteScheduler,
                           HunyuanVideoFramepackTransformer3DModel)

    tokenizer, tokenizer_2 = _tiny_tokenizer(1024), _tiny_tokenizer(77)
    vocab = len(tokenizer)
    llama = transformers.LlamaModel(transformers.LlamaConfig(
        vocab_size=vocab, hidden_size=16, intermediate_size=32, num_hidden_layers=3, num_attention_heads=2,
        num_key_value_heads=2, max_position_embeddings=1024, pad_token_id=0, bos_token_id=2, eos_token_id=3))
    clip = transformers.CLIPTextModel(transformers.CLIPTextConfig(
        vocab_size=vocab, hidden_size=8, intermediate_size=16, num_hidden_layers=1, num_attention_heads=2,
        max_position_embeddings=77, pad_token_id=0, bos_token_id=2, eos_token_id=3, projection_dim=8))
    siglip = transformers.SiglipVisionModel(transformers.SiglipVisionConfig(
        hidden_size=8, intermediate_size=16, num_hidden_layers=1, num_attention_heads=2, image_size=32,
        patch_size=16, num_channels=3))
    feature_extractor = transformers.SiglipImageProcessor(size={"height": 32, "width": 32})
    vae = AutoencoderKLHunyuanVideo(latent_channels=latent_channels, block_out_channels=(8, 8, 8, 8),
                                    layers_per_block=1, norm_num_groups=4)
    transformer = HunyuanVideoFramepackTransformer3DModel(
        in_channels=latent_channels, out_channels=latent_channels, num_attention_heads=2, attention_head_dim=16,
        num_layers=1, num_single_layers=1, num_refiner_layers=1, mlp_ratio=2.0, patch_size=2, patch_size_t=1,
        guidance_embeds=True, text_embed_dim=16, pooled_projection_dim=8, rope_axes_dim=(4, 6, 6),
        has_image_proj=True, image_proj_dim=8, has_clean_x_embedder=True)
    return {"transformer": transformer.eval(), "vae": vae.eval(), "text_encoder": llama.eval(),
            "text_encoder_2": clip.eval(), "tokenizer": tokenizer, "tokenizer_2": tokenizer_2,
            "image_encoder": siglip.eval(), "feature_extractor": feature_extractor,
            "scheduler": FlowMatchEulerDiscreteScheduler(use_dynamic_shifting=True)}


def tiny_backend(seed: int = 0, vae_tiling: bool = True) -> HunyuanBackend:
    """A CPU :class:`HunyuanBackend` over :func:`tiny_components`: the real classes and code path
    with random weights, for tests and CI. It checks the plumbing, not the pictures."""
    backend = backend_from_components(tiny_components(seed), "cpu", "none", vae_tiling)
    backend.name = "hunyuan-tiny-random"
    return backend


__all__ = [
    "HunyuanBackend", "HunyuanCondition", "KERNELS", "LAYOUT", "MEMORY_GB", "OFFLOAD_MODES", "backend_from_components",
    "check_schedule", "check_weights_dir", "choose_offload", "latent_frames", "load_hunyuan", "map_context",
    "official_plan", "pixel_frames", "tiny_backend", "tiny_components",
]
