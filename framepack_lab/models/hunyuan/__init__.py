"""HunyuanVideo FramePack (13B) as a backend for our generate loop, through diffusers.

The same plans, packer and sampler that drive the tiny model drive the real model here:

    backend = load_hunyuan("/path/to/WEIGHTS_DIR")           # a GPU, weights on disk; no hub
    first = ...                                                # (H, W, 3) image, H, W multiples of 16
    backend.set_condition("a penguin dancing in the snow", first)
    result = generate(backend, first, plan=official_plan("inverted_anti_drifting", 4), steps=25)
    result.frames                                              # (1 + 4 * 36, H, W, 3) pixel frames

    # an end frame (inverted order only) and one prompt per stretch of video, in seconds
    cond = backend.condition("[0s-2s] a penguin waddles; [2s-5s] it dances", first, last_image=end)
    result = generate(backend, first, plan=official_plan("inverted_anti_drifting", 4), steps=25, cond=cond)

One job per module, read in this order:

* :mod:`.inputs`: latent vs pixel frames; a packed plan step -> the transformer's 1x / 2x / 4x
  inputs (:func:`map_context`); the one refusal of unsupported kernels and tails
  (:func:`check_supported`).
* :mod:`.prompts`: timed prompts (:func:`parse_timed_prompts`) and which section gets which
  (:func:`section_prompts`, in generation order).
* :mod:`.backend`: :class:`HunyuanBackend` (VAE, prompt, image and end-frame conditioning,
  ``bind_condition`` (each section's condition), the time shift, ``prepare_section`` and ``velocity``).
* :mod:`.loading`: the weights folder (:data:`LAYOUT`, :func:`check_weights_dir`), offload modes and
  devices, :func:`load_hunyuan`.
* :mod:`.stand_in`: :func:`tiny_backend`, the same classes with tiny random weights, for tests and CI.
* :mod:`.choice`: :func:`choose_backend` (the weights if usable, else the stand-in, saying which) and
  :func:`load_first_frame`.
* :mod:`.crosscheck`: :func:`compare_with_pipeline`, our loop vs diffusers' own pipeline, live.

The official layout of the released checkpoints is :func:`framepack_lab.plan.official_plan`
(re-exported here): run through ``generate`` it reproduces ``HunyuanVideoFramepackPipeline``'s
latents to float precision (tests/test_hunyuan.py). Nothing here imports diffusers until a model
is built.
"""

from ...plan import OFFICIAL_HISTORY, OFFICIAL_ORDERS, OFFICIAL_WINDOW, official_plan
from .backend import DEFAULT_GUIDANCE, END_FRAME_ORDER, HunyuanBackend, HunyuanCondition, SectionInputs
from .choice import BackendChoice, choose_backend, load_first_frame
from .crosscheck import SAMPLING_TYPE, CrossCheck, compare_with_pipeline, pipeline_latents
from .inputs import (INPUTS, K1, K2, K4, KERNELS, SPATIAL, SUPPORTED, TEMPORAL, check_schedule, check_supported,
                     latent_frames, map_context, pixel_frames, place_end_latent)
from .loading import (LAYOUT, MEMORY_GB, MIN_VOCAB, OFFLOAD_MODES, OPTIONAL, Part, backend_from_components,
                      check_offload, check_weights_dir, choose_offload, load_hunyuan)
from .prompts import TimedPrompt, is_timed, parse_timed_prompts, section_prompts, section_seconds
from .stand_in import TINY_WORDS, tiny_backend, tiny_components

__all__ = [
    "DEFAULT_GUIDANCE", "END_FRAME_ORDER", "INPUTS", "K1", "K2", "K4", "KERNELS", "LAYOUT", "MEMORY_GB", "MIN_VOCAB",
    "OFFICIAL_HISTORY",
    "OFFICIAL_ORDERS", "OFFICIAL_WINDOW", "OFFLOAD_MODES", "OPTIONAL", "SAMPLING_TYPE", "SPATIAL", "SUPPORTED",
    "TEMPORAL", "TINY_WORDS", "BackendChoice", "CrossCheck", "HunyuanBackend", "HunyuanCondition", "Part",
    "SectionInputs", "TimedPrompt", "backend_from_components", "check_offload", "check_schedule", "check_supported",
    "check_weights_dir", "choose_backend", "choose_offload", "compare_with_pipeline", "is_timed", "latent_frames",
    "load_first_frame", "load_hunyuan", "map_context", "official_plan", "parse_timed_prompts", "pipeline_latents",
    "pixel_frames", "place_end_latent", "section_prompts", "section_seconds", "tiny_backend", "tiny_components",
]
