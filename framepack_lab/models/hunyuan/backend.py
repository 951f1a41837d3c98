"""HunyuanVideo FramePack components as a backend for our generate loop.

:class:`HunyuanBackend` wraps diffusers' ``HunyuanVideoFramepackTransformer3DModel``, the
HunyuanVideo VAE, the Llama and CLIP text encoders and the SigLIP image encoder (all held in a
``HunyuanVideoFramepackPipeline``, whose own loop is never used) and implements the backend
contract of :mod:`framepack_lab.backend`.

**Sampling.** Euler over ``linspace(1, 0)`` warped by the time shift, as diffusers'
``FlowMatchEulerDiscreteScheduler`` does. ``generate(shift=None)`` uses the official rule (mu linear
in the noisy token count, capped at ln 7: :func:`framepack_lab.sampler.dynamic_shift`), which is
what the scheduler does with ``use_dynamic_shifting``; hunyuanvideo-community's scheduler config
uses a fixed shift of 7 instead, which equals the capped rule at real sizes (a 480p section has
~14,000 noisy tokens, mu > ln 7). :meth:`HunyuanBackend.sampling_shift` returns what the loaded
scheduler would use. Guidance is the distilled guidance embedding (the transformer embeds
``guidance * 1000``; official demo 10); true classifier-free guidance stays off (scale 1), as in
the official demo.

**Per section.** ``generate`` calls :meth:`HunyuanBackend.prepare_section` once per section: it maps
the packed context onto the transformer's inputs (:func:`~.inputs.map_context`) on the model's
device and dtype, and the runner keeps the result in ``context.prepared`` for every sampler step.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ...backend import BackendBase
from ...frames import as_image
from ...packing import PackedContext
from ...plan import Plan
from ...runtime import latent_size
from ...sampler import dynamic_shift
from .inputs import KERNELS, SPATIAL, check_schedule, check_supported, latent_frames, map_context

DEFAULT_GUIDANCE = 10.0        # distilled guidance of the official demo


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


@dataclass(frozen=True)
class SectionInputs:
    """One section's transformer inputs, made by :meth:`HunyuanBackend.prepare_section`.

    Attributes:
        tensors: :func:`~.inputs.map_context`'s dict (``latents_clean (B, C, t1, h, w)``, ... and
            the index tensors) on the backend's device, latents in its dtype.
        batch: ``B``, the batch size the tensors were made for.
    """

    tensors: dict[str, torch.Tensor]
    batch: int


def _image_tensor(image) -> torch.Tensor:
    """``(H, W, 3)`` uint8 or float in [0, 1] (numpy or torch) -> ``(1, 3, H, W)`` float32 in [-1, 1]."""
    return (2.0 * as_image(image, "image") - 1.0).permute(2, 0, 1)[None]


class HunyuanBackend(BackendBase):
    """HunyuanVideo FramePack components as a backend for :func:`framepack_lab.generate.generate`.

    Build it with :func:`~.loading.load_hunyuan` (weights folder) or
    :func:`~.stand_in.tiny_backend` (tests). The components live in a
    ``HunyuanVideoFramepackPipeline`` (``self.pipe``) so diffusers' offloading hooks apply; only the
    components are used, never the pipeline's own loop. It has no optional features: HunyuanVideo
    FramePack was not trained with history noise or history dropout, so ``generate`` refuses
    ``history_noise`` and ``history_guidance`` for it.
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
        return latent_size(height, width, SPATIAL, "HunyuanVideo", "VAE", "480x640 or 512x512")

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
                check_supported(f"plan {plan.order!r} step {step.index} (frames {g.frames})", [g.kernel], g.tail)

    def sampling_shift(self, noisy_tokens: int) -> float:
        """The time shift the loaded scheduler would use for a section of ``noisy_tokens`` tokens
        (dynamic: :func:`framepack_lab.sampler.dynamic_shift` with the scheduler's line; static: its
        ``shift``). Pass it as ``generate(shift=...)`` to follow the scheduler exactly."""
        cfg = self.pipe.scheduler.config
        if not cfg.get("use_dynamic_shifting", False):
            return float(cfg.get("shift", 1.0))
        return dynamic_shift(noisy_tokens, base_len=cfg.get("base_image_seq_len", 256),
                             max_len=cfg.get("max_image_seq_len", 4096), base_shift=cfg.get("base_shift", 0.5),
                             max_shift=cfg.get("max_shift", 1.15))

    def _inputs(self, context: PackedContext, x_t: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """:func:`~.inputs.map_context` on this backend's device, latents in its dtype."""
        dev, dtype = self.device, self.dtype
        return {k: v.to(dev, dtype) if k.startswith("latents") else v.to(dev)
                for k, v in map_context(context, x_t).items()}

    def prepare_section(self, context: PackedContext) -> SectionInputs | None:
        """The section's transformer inputs, computed once before its sampler steps (the runner
        keeps them in ``context.prepared``). The batch size is the context latents' ``B``; a
        context without groups has none, so it gets ``None`` and :meth:`velocity` maps it itself."""
        if not context.groups:
            return None
        return SectionInputs(self._inputs(context), int(context.groups[0].latents.shape[0]))

    @torch.no_grad()
    def velocity(self, x_t: torch.Tensor, sigma: torch.Tensor, context: PackedContext,
                 cond: HunyuanCondition | None = None) -> torch.Tensor:
        """Flow velocity ``v = eps - x0`` for the noisy section ``x_t (B, C, S, h, w)`` at ``sigma (B,)``.

        ``cond``: a :class:`HunyuanCondition` (default: the one from :meth:`set_condition`). The
        transformer inputs come from ``context.prepared`` (:meth:`prepare_section`); when it is
        ``None`` (a direct call) they are computed here.
        """
        cond = cond if cond is not None else self.cond
        if cond is None:
            raise ValueError("no condition: call backend.set_condition(prompt, first_frame) before generating "
                             "(or pass cond=backend.condition(prompt, first_frame) to generate)")
        B = x_t.shape[0]
        prepared = context.prepared
        if prepared is None:
            inputs = self._inputs(context, x_t)
        elif isinstance(prepared, SectionInputs) and prepared.batch == B:
            inputs = prepared.tensors
        else:
            raise ValueError(f"context.prepared is not this backend's inputs for a batch of {B} (got "
                             f"{type(prepared).__name__}); set it with backend.prepare_section(context) or "
                             "leave it None")
        dev, dtype = self.device, self.dtype
        guidance = torch.tensor([cond.guidance] * B, dtype=dtype, device=dev) * 1000.0
        out = self.transformer(
            hidden_states=x_t.to(dev, dtype), timestep=sigma.to(dev, torch.float32) * 1000.0,
            encoder_hidden_states=cond.prompt_embeds, encoder_attention_mask=cond.prompt_mask,
            pooled_projections=cond.pooled, image_embeds=cond.image_embeds, guidance=guidance,
            return_dict=False, **inputs)[0]
        return out.float()
