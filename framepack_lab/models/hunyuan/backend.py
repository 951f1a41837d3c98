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

**End frame and timed prompts.** ``condition(prompt, image, last_image=end)`` also encodes an end
frame, and a prompt like ``"[0s-2s] a cat; [2s-4s] a dog"`` gives each section its own prompt
(:mod:`.prompts`). Before any work ``generate`` asks :meth:`HunyuanBackend.bind_condition` for each
step's condition: it refuses an end frame outside the inverted order and timed prompts that leave a
section uncovered, gives each step the text embeddings of its prompt, and gives the end frame's
latent to the first generated section only, which :func:`~.inputs.place_end_latent` puts in the 1x
slot right after that section: where diffusers' pipeline puts ``last_image``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Callable

import torch

from ...backend import STEP_CACHE, BackendBase
from ...frames import as_image
from ...media import DEFAULT_FPS
from ...packing import PackedContext
from ...plan import Plan, Step
from ...runtime import latent_size
from ...sampler import dynamic_shift
from ...step_cache import StepCache
from .cache import attach as attach_step_cache
from .cache import evaluation as cached_evaluation
from .inputs import KERNELS, SPATIAL, check_schedule, check_supported, latent_frames, map_context, place_end_latent
from .prompts import TimedPrompt, check_fps, is_timed, parse_timed_prompts, section_prompts, section_seconds

DEFAULT_GUIDANCE = 10.0        # distilled guidance of the official demo
END_FRAME_ORDER = "inverted_anti_drifting"  # the one order with an end frame (as diffusers' last_image)


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
        end_latent: ``(1, C, 1, h, w)`` latent of the end frame (diffusers' ``last_image``), or None.
        spans: timed prompts (:func:`~.prompts.parse_timed_prompts`), or ``()`` for one prompt; with
            spans, the three text fields above hold the first span's embeddings.
        texts: each distinct span text -> its ``(prompt_embeds, prompt_mask, pooled)``, encoded once.
        fps: frames per second that map timed prompts onto sections.
    """

    prompt_embeds: torch.Tensor
    prompt_mask: torch.Tensor
    pooled: torch.Tensor
    image_embeds: torch.Tensor
    guidance: float
    prompt: str = ""
    end_latent: torch.Tensor | None = None
    spans: tuple[TimedPrompt, ...] = ()
    texts: dict[str, tuple[torch.Tensor, torch.Tensor, torch.Tensor]] = field(default_factory=dict, repr=False)
    fps: float = DEFAULT_FPS

    def for_text(self, text: str) -> "HunyuanCondition":
        """The one-prompt condition of span text ``text`` (same image, end frame and guidance)."""
        if text not in self.texts:
            raise ValueError(f"no embeddings for {text!r}; the timed prompts are {[p.text for p in self.spans]}")
        embeds, mask, pooled = self.texts[text]
        return dataclasses.replace(self, prompt_embeds=embeds, prompt_mask=mask, pooled=pooled, prompt=text,
                                   spans=(), texts={})


@dataclass(frozen=True)
class SectionInputs:
    """One section's transformer inputs, made by :meth:`HunyuanBackend.prepare_section`.

    Attributes:
        tensors: :func:`~.inputs.map_context`'s dict (``latents_clean (B, C, t1, h, w)``, ... and
            the index tensors) on the backend's device, latents in its dtype.
        batch: ``B``, the batch size the tensors were made for.
        step_cache: the section's step cache with ``generate(cache=...)`` (:mod:`.cache`), or None.
    """

    tensors: dict[str, torch.Tensor]
    batch: int
    step_cache: StepCache | None = None


def _image_tensor(image) -> torch.Tensor:
    """``(H, W, 3)`` uint8 or float in [0, 1] (numpy or torch) -> ``(1, 3, H, W)`` float32 in [-1, 1]."""
    return (2.0 * as_image(image, "image") - 1.0).permute(2, 0, 1)[None]


class HunyuanBackend(BackendBase):
    """HunyuanVideo FramePack components as a backend for :func:`framepack_lab.generate.generate`.

    Build it with :func:`~.loading.load_hunyuan` (weights folder) or
    :func:`~.stand_in.tiny_backend` (tests). The components live in a
    ``HunyuanVideoFramepackPipeline`` (``self.pipe``) so diffusers' offloading hooks apply; only the
    components are used, never the pipeline's own loop. Its one optional feature is step caching
    (``generate(cache=...)`` through diffusers' FirstBlockCache hook, :mod:`.cache`): HunyuanVideo
    FramePack was not trained with history noise or history dropout, so ``generate`` refuses
    ``history_noise`` and ``history_guidance`` for it.
    """

    kernels = KERNELS
    features = frozenset({STEP_CACHE})

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
    def _encode_text(self, prompt: str, max_sequence_length: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Llama hidden states ``(1, L, D)`` (template cropped), their mask ``(1, L)``, CLIP pooled ``(1, D')``."""
        from diffusers.pipelines.hunyuan_video.pipeline_hunyuan_video_framepack import DEFAULT_PROMPT_TEMPLATE

        p, dev, dtype = self.pipe, self.device, self.dtype
        template, crop = DEFAULT_PROMPT_TEMPLATE["template"], DEFAULT_PROMPT_TEMPLATE["crop_start"]
        tok = p.tokenizer(template.format(prompt), max_length=max_sequence_length + crop, padding="max_length",
                          truncation=True, return_tensors="pt", return_attention_mask=True)
        ids, mask = tok.input_ids.to(dev), tok.attention_mask.to(dev)
        hidden = p.text_encoder(input_ids=ids, attention_mask=mask, output_hidden_states=True).hidden_states[-3]
        tok2 = p.tokenizer_2(prompt, padding="max_length", max_length=77, truncation=True, return_tensors="pt")
        pooled = p.text_encoder_2(tok2.input_ids.to(dev), output_hidden_states=False).pooler_output
        return hidden[:, crop:].to(dtype), mask[:, crop:].to(dtype), pooled.to(dtype)

    @torch.no_grad()
    def condition(self, prompt: str, image, guidance: float = DEFAULT_GUIDANCE,
                  max_sequence_length: int = 256, *, last_image=None, fps: float = DEFAULT_FPS) -> HunyuanCondition:
        """Encode the prompt (Llama + CLIP), the first frame (SigLIP) and the end frame (VAE) once.

        Args:
            prompt: the text prompt; or timed prompts, one per stretch of video, when it starts with
                ``[``: ``"[0s-2s] a cat; [2s-4s] a dog"`` (:mod:`.prompts`; each distinct text is
                encoded once).
            image: the first frame ``(H, W, 3)``, uint8 or float in [0, 1].
            guidance: distilled guidance scale (official demo 10, diffusers' default 6).
            max_sequence_length: Llama tokens kept after the template (diffusers' default 256).
            last_image: an end frame ``(H, W, 3)`` of the first frame's size (diffusers'
                ``last_image``), for the inverted order only (refused for others by ``generate``).
                Only its VAE latent is used, as in diffusers 0.42.1, whose pipeline computes the
                mean of both frames' SigLIP embeddings but passes the first frame's to the model.
            fps: frames per second that map timed prompts onto sections (the official 30).

        Raises:
            ValueError: before anything is encoded, for a prompt that is not a string, malformed
                timed prompts, an end frame of another size than the first frame, or a bad ``fps``.
        """
        if not isinstance(prompt, str):
            raise ValueError(f"prompt must be a string, got {type(prompt).__name__}")
        spans = parse_timed_prompts(prompt) if is_timed(prompt) else ()
        check_fps(fps)
        first = as_image(image, "image")
        end = None if last_image is None else as_image(last_image, "last_image")
        if end is not None and end.shape != first.shape:
            raise ValueError(f"last_image is {tuple(end.shape[:2])} (H, W) but the first frame is "
                             f"{tuple(first.shape[:2])}; give an end frame of the first frame's size")
        if end is not None:
            self.latent_size(*end.shape[:2])  # the VAE takes it: refuse a size it cannot take before any work
        texts = {text: self._encode_text(text, max_sequence_length) for text in dict.fromkeys(p.text for p in spans)}
        embeds, mask, pooled = texts[spans[0].text] if spans else self._encode_text(prompt, max_sequence_length)
        image_embeds = self._encode_image(first)
        end_latent = None if end is None else self.encode(end[None, None])  # (1, C, 1, h, w)
        return HunyuanCondition(embeds, mask, pooled, image_embeds, float(guidance), prompt, end_latent, spans, texts,
                                float(fps))

    @torch.no_grad()
    def _encode_image(self, image: torch.Tensor) -> torch.Tensor:
        """SigLIP last hidden state ``(1, N, D)`` of an ``(H, W, 3)`` image in [0, 1]."""
        p = self.pipe
        pixels = _image_tensor(image)  # (1, 3, H, W) in [-1, 1]
        features = p.feature_extractor(images=(pixels + 1) / 2, return_tensors="pt", do_rescale=False)
        features = features.to(device=self.device, dtype=p.image_encoder.dtype)
        return p.image_encoder(**features).last_hidden_state.to(self.dtype)

    def set_condition(self, prompt: str, image, guidance: float = DEFAULT_GUIDANCE,
                      max_sequence_length: int = 256, *, last_image=None, fps: float = DEFAULT_FPS
                      ) -> HunyuanCondition:
        """Compute :meth:`condition` and keep it: ``generate`` uses it when it is given no ``cond``."""
        self.cond = self.condition(prompt, image, guidance, max_sequence_length, last_image=last_image, fps=fps)
        return self.cond

    def bind_condition(self, plan: Plan, cond: HunyuanCondition | None) -> Callable[[Step], HunyuanCondition]:
        """Each step's condition for ``plan``; ``generate`` calls it before any work.

        ``cond`` (default: the one from :meth:`set_condition`) is checked against the plan: an end
        frame needs the inverted order (:data:`END_FRAME_ORDER`), timed prompts must hold the
        middle of every section (:func:`~.prompts.section_prompts`). Each step gets a one-prompt
        condition: its prompt's embeddings, and the end frame's latent on the first step only (as
        diffusers uses ``last_image`` in its first section alone).

        Returns:
            ``step -> HunyuanCondition`` for the plan's steps.

        Raises:
            ValueError: no condition at all, an end frame for another order, or a section no timed
                prompt covers.
        """
        cond = cond if cond is not None else self.cond
        if cond is None:
            raise ValueError("no condition: call backend.set_condition(prompt, first_frame) before generating "
                             "(or pass cond=backend.condition(prompt, first_frame) to generate)")
        if not isinstance(cond, HunyuanCondition):
            raise ValueError(f"cond must be a HunyuanCondition from backend.condition(prompt, first_frame), got "
                             f"{type(cond).__name__}")
        if cond.end_latent is not None and plan.order != END_FRAME_ORDER:
            raise ValueError(f"an end frame (last_image) needs the {END_FRAME_ORDER!r} order, which generates the "
                             f"end of the video first toward it; the plan's order is {plan.order!r}. Use "
                             f"official_plan({END_FRAME_ORDER!r}, n_sections) or make the condition without "
                             "last_image")
        texts = section_prompts(cond.spans, plan, cond.fps) if cond.spans else [None] * len(plan.steps)
        per_step = {}
        for i, (step, text) in enumerate(zip(plan.steps, texts)):
            c = cond.for_text(text) if text is not None else cond
            per_step[step.index] = c if i == 0 or c.end_latent is None else dataclasses.replace(c, end_latent=None)
        return lambda step: per_step[step.index]

    def section_table(self, plan: Plan, cond: HunyuanCondition | None = None) -> list[dict]:
        """What each step of ``plan`` is conditioned on, in generation order: one dict per step with
        ``step``, ``frames`` (latent), ``seconds`` and ``prompt`` (and ``end frame``: whether the
        step sees it). For display; :meth:`bind_condition` is what ``generate`` uses."""
        bound = self.bind_condition(plan, cond)
        fps = (cond if cond is not None else self.cond).fps
        rows = []
        for step in plan.steps:
            c, (start, end) = bound(step), section_seconds(step, fps)
            rows.append({"step": step.index, "frames": f"{min(step.generated)}-{max(step.generated)}",
                         "seconds": f"{start:.2f}-{end:.2f}", "prompt": c.prompt,
                         "end frame": c.end_latent is not None})
        return rows

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

    def prepare_section(self, context: PackedContext, step_cache: StepCache | None = None) -> SectionInputs | None:
        """The section's transformer inputs, computed once before its sampler steps (the runner
        keeps them in ``context.prepared``). The batch size is the context latents' ``B``; a
        context without groups has none, so it gets ``None`` and :meth:`velocity` maps it itself.
        With a ``step_cache`` (``generate(cache=...)``) the transformer gets fresh FirstBlockCache
        hooks for the section (:func:`.cache.attach`); without, any of ours come off."""
        attach_step_cache(self.transformer, step_cache)
        if not context.groups:
            if step_cache is not None:
                raise ValueError("step caching needs a packed context with at least one group (the first frame)")
            return None
        return SectionInputs(self._inputs(context), int(context.groups[0].latents.shape[0]), step_cache)

    @torch.no_grad()
    def velocity(self, x_t: torch.Tensor, sigma: torch.Tensor, context: PackedContext,
                 cond: HunyuanCondition | None = None) -> torch.Tensor:
        """Flow velocity ``v = eps - x0`` for the noisy section ``x_t (B, C, S, h, w)`` at ``sigma (B,)``.

        ``cond``: a one-prompt :class:`HunyuanCondition` (default: the one from :meth:`set_condition`),
        as :meth:`bind_condition` gives each step; its ``end_latent``, when set, takes the 1x slot
        right after the section (:func:`~.inputs.place_end_latent`). The transformer inputs come from
        ``context.prepared`` (:meth:`prepare_section`); when it is ``None`` (a direct call) they are
        computed here.
        """
        cond = cond if cond is not None else self.cond
        if cond is None:
            raise ValueError("no condition: call backend.set_condition(prompt, first_frame) before generating "
                             "(or pass cond=backend.condition(prompt, first_frame) to generate)")
        if cond.spans:
            raise ValueError("a condition with timed prompts has one prompt per section: bind it to a plan first "
                             "(generate does: backend.bind_condition(plan, cond)(step) is the step's condition)")
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
        if cond.end_latent is not None:
            inputs = place_end_latent(inputs, context, cond.end_latent.to(dev, dtype))
        guidance = torch.tensor([cond.guidance] * B, dtype=dtype, device=dev) * 1000.0
        step_cache = prepared.step_cache if isinstance(prepared, SectionInputs) else None
        with cached_evaluation(self.transformer, step_cache):  # step caching: diffusers' hook (.cache)
            out = self.transformer(
                hidden_states=x_t.to(dev, dtype), timestep=sigma.to(dev, torch.float32) * 1000.0,
                encoder_hidden_states=cond.prompt_embeds, encoder_attention_mask=cond.prompt_mask,
                pooled_projections=cond.pooled, image_embeds=cond.image_embeds, guidance=guidance,
                return_dict=False, **inputs)[0]
        return out.float()
