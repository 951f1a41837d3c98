"""A live check against diffusers: our loop with the official plan vs ``HunyuanVideoFramepackPipeline``.

Run through our :func:`~framepack_lab.generate.generate`,
:func:`~framepack_lab.plan.official_plan` should reproduce diffusers' own pipeline exactly: same
first-frame latent, same prompt and image embeddings, same seed (so the same noise per section),
the same shifted sigma schedule and the same Euler steps; with an end frame (``last_image``), the same
end-frame latent in the first section. One difference is removed by hand: the pipeline *samples*
the first (and end) frame's latent from the VAE posterior, our ``encode`` takes its mean, so the
pipeline is handed ours. On the tiny stand-in (:func:`~.stand_in.tiny_backend`) a check takes
a second; with real weights it costs two full generations.

    check = compare_with_pipeline(tiny_backend(), image, "a penguin", "f1", n_sections=2)
    check.max_diff          # ~1e-6: float rounding
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import torch

from ...frames import as_image
from ...generate import GenerationResult, generate
from ...plan import OFFICIAL_ORDERS, official_plan
from .backend import HunyuanBackend
from .inputs import pixel_frames

# our order -> diffusers' ``sampling_type`` for the same loop
SAMPLING_TYPE = {"inverted_anti_drifting": "inverted_anti_drifting", "f1": "vanilla"}


@contextmanager
def _image_latents(pipe, *latents: torch.Tensor):
    """Inside, ``pipe`` uses ``latents`` (each ``(1, C, 1, h, w)``) as its image latents in the order it
    asks for them (first frame, then ``last_image``) instead of sampling them from the VAE posterior
    (so it draws nothing from the generator); the pipeline's own method is restored on exit."""
    own, queue = vars(pipe).get("prepare_image_latents"), list(latents)
    pipe.prepare_image_latents = lambda *a, **k: queue.pop(0).to(k.get("device"), k.get("dtype"))
    try:
        yield pipe
    finally:
        if own is None:
            del pipe.prepare_image_latents
        else:
            pipe.prepare_image_latents = own


def _uint8(image) -> np.ndarray:
    """``(H, W, 3)`` uint8 or float in [0, 1] -> ``(H, W, 3)`` uint8: both sides see the same pixels."""
    return (as_image(image, "image") * 255).round().to(torch.uint8).numpy()


def pipeline_latents(backend: HunyuanBackend, image, prompt: str, order: str, n_sections: int, window: int = 3,
                     steps: int = 4, seed: int = 0, guidance: float = 6.0, last_image=None) -> torch.Tensor:
    """diffusers' ``HunyuanVideoFramepackPipeline`` over the backend's own components.

    Args:
        backend: a :class:`~.backend.HunyuanBackend` (its ``pipe`` runs; its loop, not ours).
        image: the first frame ``(H, W, 3)``, uint8 (float in [0, 1] is rounded to uint8).
        prompt: the text prompt.
        order: our order, one of :data:`~framepack_lab.plan.OFFICIAL_ORDERS` (mapped to the
            pipeline's ``sampling_type`` by :data:`SAMPLING_TYPE`).
        n_sections, window: sections of ``window`` latent frames (``latent_window_size``).
        steps, seed, guidance: sampler steps per section, the generator's seed, distilled guidance.
        last_image: an end frame ``(H, W, 3)`` (the pipeline's ``last_image``; inverted order only).

    Returns:
        The pipeline's latent video ``(C, 1 + n_sections * window, h, w)``, given the first-frame
        (and end-frame) latents of our ``encode`` (the posterior mean).
    """
    from PIL import Image

    if order not in SAMPLING_TYPE:
        raise ValueError(f"the pipeline has loops for the orders {' and '.join(map(repr, OFFICIAL_ORDERS))} only, "
                         f"got {order!r}")
    img8 = _uint8(image)
    H, W = img8.shape[:2]
    latents = [backend.encode(torch.from_numpy(img8)[None, None].float() / 255)]  # (1, C, 1, h, w)
    end = None
    if last_image is not None:
        end8 = _uint8(last_image)
        latents.append(backend.encode(torch.from_numpy(end8)[None, None].float() / 255))
        end = Image.fromarray(end8)
    pipe = backend.pipe
    pipe.set_progress_bar_config(disable=True)
    with _image_latents(pipe, *latents):
        out = pipe(image=Image.fromarray(img8), last_image=end, prompt=prompt, height=H, width=W,
                   num_frames=n_sections * pixel_frames(window), latent_window_size=window,
                   num_inference_steps=steps, guidance_scale=guidance, sampling_type=SAMPLING_TYPE[order],
                   generator=torch.Generator().manual_seed(seed), output_type="latent", return_dict=False)[0]
    return out[-1][0].float().cpu()  # the pipeline's whole latent history after the last section


@dataclass
class CrossCheck:
    """Our run and the pipeline's for one order.

    Attributes:
        order: our order name.
        result: our :class:`~framepack_lab.generate.GenerationResult` (``latents (C, T, h, w)``).
        theirs: the pipeline's latents ``(C, T, h, w)``.
    """

    order: str
    result: GenerationResult
    theirs: torch.Tensor

    @property
    def max_diff(self) -> float:
        """Largest ``|ours - pipeline|`` over the latent video."""
        return float((self.result.latents - self.theirs).abs().max())

    def row(self) -> dict:
        """One table row: order, latent frames, the largest difference and the largest latent."""
        return {"order": self.order, "latent frames": int(self.theirs.shape[1]),
                "max |ours - pipeline|": self.max_diff, "max |latent|": float(self.theirs.abs().max())}


def compare_with_pipeline(backend: HunyuanBackend, image, prompt: str, order: str, n_sections: int,
                          window: int = 3, steps: int = 4, seed: int = 0, guidance: float = 6.0,
                          last_image=None) -> CrossCheck:
    """Generate with :func:`~framepack_lab.plan.official_plan` through our loop, and with diffusers'
    pipeline (:func:`pipeline_latents`), from the same inputs; arguments as there (an end frame
    ``last_image`` enters ours through ``backend.condition(..., last_image=...)``)."""
    img8 = _uint8(image)
    end8 = None if last_image is None else _uint8(last_image)
    cond = backend.condition(prompt, img8, guidance=guidance, last_image=end8)
    plan = official_plan(order, n_sections, window=window)
    ours = generate(backend, img8, plan=plan, steps=steps, seed=seed, cond=cond)
    theirs = pipeline_latents(backend, img8, prompt, order, n_sections, window, steps, seed, guidance, end8)
    return CrossCheck(order, ours, theirs)
