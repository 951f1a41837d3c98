"""Run a sampling plan with a backend: section by section, seeded, with progress and a stop hook.

    backend = load_tiny()
    result = generate(backend, first_frame, n_frames=64, order="inverted_anti_drifting", seed=0)
    result.frames  # (T, H, W, 3) float in [0, 1]
"""

from __future__ import annotations

import dataclasses
import math
import time
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np
import torch

from .backend import HISTORY_NOISE, check_features
from .discrete import DEFAULT_K
from .frames import as_image, decoded_mask
from .packing import pack
from .plan import ORDERS, Plan, Step, make_plan
from .sampler import dynamic_shift, sample, sigmas
from .schedule import BASE, Schedule, as_schedule
from .step_cache import CacheLedger

# Inverted anti-drifting, the paper's and the official demo's order, is the default because with the
# shipped tiny model it meets every one of evaluate's targets (presence, worst frame, size kept,
# motion) and drifts least; the rule is "the paper's order if it meets the targets, else the order
# that meets the most". Figures: README, "The embedded model, measured" (python -m
# framepack_lab.evaluate --seeds 48). The checkpoint before moved its sprites at 0.41 of the world's
# speed in this order, and F1 was the default then.
DEFAULT_ORDER = "inverted_anti_drifting"
# sigma_test of history noise for backends trained with it (python -m framepack_lab.evaluate --sweep)
DEFAULT_HISTORY_NOISE = 0.1
DEFAULT_N_FRAMES = 64  # latent frames of a video when neither n_frames nor a plan is given
# The token budget of one step: at most MAX_STEP_FRAMES * L_f tokens, L_f being the tokens of one
# latent frame at the base kernel (1, 2, 2) at the backend's latent size. FramePack bounds the
# context at (S + lambda / (lambda - 1)) L_f (Eq. 3); the official layout (f1k1_x_g9_f1k1f2k2f16k4)
# needs about 11.6 L_f, every preset here at most about 23 L_f (with a 'ta' tail, tiny latents).
# The cap sits above the largest deliberate unpacked step (make bench's baseline: 32 sections of 4
# frames, 129 frames at k1) and refuses typos such as f1000k1 that would run for hours.
MAX_STEP_FRAMES = 160


@dataclass
class SectionEvent:
    """What a per-section callback receives after a section lands.

    Attributes:
        index: 0-based index of the finished step; ``n_steps``: steps in the plan.
        step: the plan step; ``seconds``: its wall time.
        latents: the latent buffer ``(1, C, T, h, w)`` (unknown frames are zero).
        known: sorted frame indices known so far.
    """

    index: int
    n_steps: int
    step: Step
    seconds: float
    latents: torch.Tensor
    known: list[int]
    _decode: Callable[[torch.Tensor], torch.Tensor] = field(repr=False, default=None)
    n_frames: int | None = None

    def section_frames(self) -> np.ndarray:
        """Decoded frames of this section: ``(S', H, W, 3)`` (``S' = S`` for the tiny model; a
        causal video VAE such as HunyuanVideo's decodes more)."""
        return _to_numpy(self._decode(self.latents[:, :, list(self.step.generated)]))[0]

    def preview(self, fill: float = 0.5) -> np.ndarray:
        """The whole video so far ``(T', H, W, 3)``, decoded from the first ``n_frames`` latent
        frames; frames not generated yet are flat ``fill``."""
        latents = self.latents if self.n_frames is None else self.latents[:, :, :self.n_frames]
        frames = _to_numpy(self._decode(latents))[0]
        frames[~decoded_mask(frames.shape[0], latents.shape[2], self.known)] = fill
        return frames


@dataclass
class GenerationResult:
    """The output of :func:`generate`.

    Attributes:
        frames: ``(n_frames, H, W, 3)`` float32 in [0, 1] (frame 0 is the decoded first frame);
            ``1 + 4 (n_frames - 1)`` pixel frames with HunyuanVideo's causal VAE.
        latents: ``(C, n_frames, h, w)``.
        plan: the plan that ran; ``seed``: the seed used.
        section_seconds: wall time of each step that ran, in plan order.
        stopped: True when the stop hook ended generation early (``frames`` then holds grey
            frames where nothing was generated; see ``known``).
        known: frame indices that were generated (or given).
        info: the settings that ran (``steps``, ``sampler``, ``shift``, ...); with step caching
            also ``info["cache"] = {"threshold", "computed", "skipped"}``, this video's model
            evaluations.
    """

    frames: np.ndarray
    latents: torch.Tensor
    plan: Plan
    seed: int
    section_seconds: list[float]
    stopped: bool
    known: list[int]
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def seconds(self) -> float:
        return float(sum(self.section_seconds))


def _to_numpy(frames: torch.Tensor) -> np.ndarray:
    return frames.detach().float().cpu().numpy()


def generate(backend, first_frame, n_frames: int | None = None, schedule: Schedule | str | None = None,
             order: str | None = None, steps: int = 20, seed: int = 0,
             shift: float | None = None, sampler: str = "euler",
             callback: Callable[[SectionEvent], None] | None = None,
             stop: Callable[[], bool] | None = None, progress: bool = False,
             plan: Plan | None = None, cond: Any = None,
             history_noise: float | None = None, history_guidance: float = 1.0,
             before_section: Callable[[Step], None] | None = None,
             cache: float | None = None) -> GenerationResult:
    """Generate a video from its first frame with a FramePack backend.

    Args:
        backend: e.g. :func:`framepack_lab.models.tiny.load_tiny`'s result.
        first_frame: ``(H, W, 3)`` image, uint8 or float in [0, 1] (finite values only).
        n_frames: latent frames of the result, including the first (default
            :data:`DEFAULT_N_FRAMES`); a section may not be longer than the ``n_frames - 1``
            frames to generate.
        schedule: a schedule, name or preset key (default: the order's default). A name ending in
            ``+D`` (or ``+DK``, e.g. ``+D64``) snaps the history to the backend's K-means codebook
            before packing (discrete history, :mod:`framepack_lab.discrete`).
        order: one of ``vanilla``, ``anti_drifting``, ``inverted_anti_drifting``, ``f1`` (default
            :data:`DEFAULT_ORDER`).
        steps: sampler steps per section.
        seed: seeds the noise of every section (same seed, same video).
        shift: time shift of the sigma schedule; ``None`` uses the official rule for the
            section's noisy token count (:func:`framepack_lab.sampler.dynamic_shift`).
        sampler: ``"euler"`` or ``"heun"``.
        callback: called with a :class:`SectionEvent` after every section.
        stop: checked between sections; returning True ends generation early.
        progress: show a tqdm bar over sections.
        plan: run this plan instead of building one from ``order``/``schedule``/``n_frames``;
            any of those given as well must agree with the plan (else ``ValueError``).
        cond: passed to ``backend.velocity`` as its fourth argument when given (e.g. HunyuanVideo's
            prompt and image embeddings), as ``backend.bind_condition(plan, cond)(step)`` (per-section
            prompts, an end frame); backends are called without it when that is None.
        before_section: called with the plan step just before each section starts (after ``stop``).
        history_noise: flow time ``sigma_test`` in [0, 1) to which the generated history is
            noised before packing (Diffusion Forcing's history noise; the first frame stays
            clean); ``None`` takes the backend's default (:data:`DEFAULT_HISTORY_NOISE` for the
            tiny model, 0 for backends without the feature).
        history_guidance: guidance weight ``w`` between the prediction with history and without
            it: ``v = v_none + w (v_history - v_none)``; 1 is the plain prediction (one model
            call per sampler step), other values cost a second call.
        cache: step caching like the official demo's TeaCache (:mod:`framepack_lab.step_cache`):
            a threshold in [0, 1) on the accumulated relative change of the model's input under
            which a model evaluation is skipped and its last residual reused (the demo uses 0.1
            or 0.15; lossy, for drafts). The first and last evaluation of every section are
            computed. ``None`` or 0: off, the plain path bit for bit. Needs a backend with
            :data:`~framepack_lab.backend.STEP_CACHE`.

    Returns:
        A :class:`GenerationResult`.

    Raises:
        ValueError: for bad input, before any work (nothing is encoded or sampled): an image that
            is not a finite RGB image, a plan and arguments that disagree, a section longer than
            the video, a step over the token budget (:data:`MAX_STEP_FRAMES`), ``+D`` without a codebook, or an
            option the backend cannot honour.
    """
    return generate_many(backend, [first_frame], n_frames, schedule, order, steps, [seed], shift, sampler,
                         callback, stop, progress, plan, cond, history_noise, history_guidance, before_section,
                         cache)[0]


def generate_many(backend, first_frames, n_frames: int | None = None, schedule: Schedule | str | None = None,
                  order: str | None = None, steps: int = 20, seeds=None,
                  shift: float | None = None, sampler: str = "euler",
                  callback: Callable[[SectionEvent], None] | None = None,
                  stop: Callable[[], bool] | None = None, progress: bool = False,
                  plan: Plan | None = None, cond: Any = None,
                  history_noise: float | None = None, history_guidance: float = 1.0,
                  before_section: Callable[[Step], None] | None = None,
                  cache: float | None = None, prefix=None) -> list[GenerationResult]:
    """:func:`generate` for several first frames at once, as one batch (same plan for all).

    ``prefix`` (optional, one per first frame): the frames that *follow* each first frame,
    ``(P, H, W, 3)`` each, all of one length ``P``: frames ``1..P`` of the video are given instead of
    generated (teacher forcing, or continuing a video). Plan steps whose frames all lie within them
    are skipped; the first step that reaches past them generates its whole section. The forgetting
    probe uses it to hide a sprite in real history before the model takes over.

    ``first_frames`` is a sequence of ``(H, W, 3)`` images of one size, ``seeds`` one seed each
    (default ``0, 1, 2, ...``). Each video draws its noise from its own seeded generator, so video
    ``i`` is the video ``generate(..., seed=seeds[i])`` makes alone (up to float rounding). The
    callback's event holds the whole batch's latents ``(B, C, T, h, w)``. Returns one
    :class:`GenerationResult` per first frame.
    """
    plan = _resolve_plan(plan, order, n_frames, schedule)
    images = [as_image(f) for f in first_frames]
    if not images:
        raise ValueError("first_frames is empty; give at least one (H, W, 3) image")
    if any(im.shape != images[0].shape for im in images):
        raise ValueError(f"all first frames must have one size, got {sorted({tuple(i.shape) for i in images})}")
    seeds = list(range(len(images))) if seeds is None else [int(s) for s in seeds]
    if len(seeds) != len(images):
        raise ValueError(f"{len(images)} first frames but {len(seeds)} seeds; give one seed per frame")
    history_noise = _check_history_options(backend, history_noise, history_guidance)
    given = _check_prefix(prefix, images, plan)  # (B, P, H, W, 3) or None
    ledger = CacheLedger.start(backend, cache, steps, sampler, len(images))  # step caching, checked before work
    x = torch.stack(images)[:, None]  # (B, 1, H, W, 3)
    B, H, W = x.shape[0], x.shape[2], x.shape[3]
    h, w = backend.latent_size(H, W)
    _check_plan_fits(plan, h, w)
    backend.check_plan(plan)  # refuse what the backend cannot run before any work
    condition_of = backend.bind_condition(plan, cond)  # each step's cond; refuses one the plan cannot honour
    codebooks = _codebooks(backend, plan)
    shift = dynamic_shift(BASE.tokens(plan.schedule.generated, h, w)) if shift is None else float(shift)
    sched = sigmas(steps, shift)

    first_latent = backend.encode(x)  # (B, C, 1, h, w)
    C = first_latent.shape[1]
    video = torch.zeros(B, C, plan.total_frames, h, w, device=first_latent.device)
    video[:, :, 0] = first_latent[:, :, 0]
    known = {0}
    if given is not None:  # frames 1..P are given: encode them, skip the steps they cover
        video[:, :, 1:1 + given.shape[1]] = backend.encode(given).to(video.device)
        known.update(range(1, 1 + given.shape[1]))
    gens = [torch.Generator().manual_seed(s) for s in seeds]
    seconds: list[float] = []
    stopped = False

    bar = None
    if progress:
        from tqdm.auto import tqdm
        bar = tqdm(total=len(plan.steps), desc=f"{plan.order} sections", unit="section")
    for step in plan.steps:
        if stop is not None and stop():
            stopped = True
            break
        if known.issuperset(step.generated):  # every frame of the section was given (prefix)
            continue
        if before_section is not None:
            before_section(step)
        t0 = time.perf_counter()
        context = pack(video, step, backend.kernels, history_noise, gens, codebooks.get(step_codebook_k(step)))
        context = dataclasses.replace(context, prepared=ledger.prepare(backend, context))
        noise = torch.cat([torch.randn((1, C, len(step.generated), h, w), generator=g) for g in gens]).to(video.device)
        extra = () if (step_cond := condition_of(step)) is None else (step_cond,)
        velocity = _guided_velocity(backend, context, history_guidance, extra, ledger)
        section = sample(velocity, noise, sched, sampler)
        video[:, :, list(step.generated)] = section
        known.update(step.generated)
        seconds.append(time.perf_counter() - t0)
        if bar is not None:
            bar.update(1)
        if callback is not None:
            callback(SectionEvent(step.index, len(plan.steps), step, seconds[-1], video, sorted(known), backend.decode,
                                  plan.n_frames))
    if bar is not None:
        bar.close()

    video = video[:, :, :plan.n_frames]
    frames = _to_numpy(backend.decode(video))
    known_list = sorted(f for f in known if f < plan.n_frames)
    if stopped:
        frames[:, ~decoded_mask(frames.shape[1], plan.n_frames, known_list)] = 0.5
    info = {"steps": steps, "sampler": sampler, "shift": shift, "history_noise": history_noise,
            "history_guidance": float(history_guidance)}
    return [GenerationResult(frames[b], video[b].cpu(), plan, seeds[b], list(seconds), stopped, known_list,
                             dict(info, **ledger.report(b))) for b in range(B)]


def _check_prefix(prefix, images: list[torch.Tensor], plan: Plan) -> torch.Tensor | None:
    """``prefix`` as one ``(B, P, H, W, 3)`` float tensor, or ``ValueError`` before any work."""
    if prefix is None:
        return None
    videos = [torch.stack([as_image(f) for f in v]) if len(v) else None for v in prefix]
    if len(videos) != len(images):
        raise ValueError(f"{len(images)} first frames but {len(videos)} prefixes; give one prefix video per first frame")
    if any(v is None for v in videos) or len({tuple(v.shape) for v in videos}) != 1:
        raise ValueError("prefix videos must all be (P, H, W, 3) with one P >= 1; got lengths "
                         f"{[0 if v is None else len(v) for v in videos]}")
    if videos[0].shape[1:] != images[0].shape:
        raise ValueError(f"prefix frames are {tuple(videos[0].shape[1:])} but the first frames {tuple(images[0].shape)}; "
                         "give frames of the first frame's size")
    if len(videos[0]) >= plan.n_frames - 1:
        raise ValueError(f"a prefix of {len(videos[0])} frames leaves nothing to generate in a video of "
                         f"n_frames={plan.n_frames}; ask for more frames or give a shorter prefix")
    return torch.stack(videos)


def _resolve_plan(plan: Plan | None, order: str | None, n_frames: int | None,
                  schedule: Schedule | str | None) -> Plan:
    """The plan to run: ``plan`` itself, or one built from ``order``, ``n_frames`` and ``schedule``.

    A plan and arguments that contradict it are refused (an argument equal to the plan's is fine),
    so no argument is silently ignored.
    """
    if plan is None:
        order = DEFAULT_ORDER if order is None else order
        if order not in ORDERS:
            raise ValueError(f"unknown sampling order {order!r}; choose one of {', '.join(ORDERS)}")
        return make_plan(order, DEFAULT_N_FRAMES if n_frames is None else n_frames, schedule)
    if not isinstance(plan, Plan):
        raise ValueError(f"plan must be a framepack_lab.plan.Plan (e.g. make_plan(order, n_frames, schedule)), "
                         f"got {type(plan).__name__}")
    conflicts = []
    if order is not None and order != plan.order:
        conflicts.append(f"order={order!r} (the plan's order is {plan.order!r})")
    if n_frames is not None and n_frames != plan.n_frames:
        conflicts.append(f"n_frames={n_frames!r} (the plan has {plan.n_frames})")
    if schedule is not None and as_schedule(schedule) != plan.schedule:
        conflicts.append(f"schedule={str(schedule)!r} (the plan's schedule is {plan.schedule.name!r})")
    if conflicts:
        raise ValueError(f"generate got plan= and {', '.join(conflicts)}: give either a plan or the order, "
                         "n_frames and schedule to build one, not both (leave the arguments out, or build the "
                         "plan you want with framepack_lab.plan.make_plan(order, n_frames, schedule))")
    return plan


def _check_plan_fits(plan: Plan, latent_h: int, latent_w: int) -> None:
    """Refuse a plan generation cannot honour or that would run for hours, before any work."""
    sched = plan.schedule
    S, unknown = sched.generated, plan.n_frames - 1
    if S > unknown:
        raise ValueError(f"schedule {sched.name!r} generates {S} frames per section, but a video of "
                         f"n_frames={plan.n_frames} has only {unknown} frame(s) to generate after the first; use a "
                         f"section of at most {unknown} frames (gN with N <= {unknown}) or ask for at least "
                         f"n_frames={S + 1}")
    L_f = BASE.tokens(1, latent_h, latent_w)  # tokens of one latent frame at the base kernel
    budget = MAX_STEP_FRAMES * L_f
    tokens = plan.tokens_per_step(latent_h, latent_w)
    worst = max(range(len(tokens)), key=tokens.__getitem__, default=None)
    if worst is not None and tokens[worst] > budget:
        raise ValueError(f"step {worst} of the {plan.order} plan with schedule {sched.name!r} packs "
                         f"{tokens[worst]} tokens ({tokens[worst] / L_f:.1f} latent frames' worth at {L_f} tokens "
                         f"per {latent_h}x{latent_w} latent frame), over the budget of {MAX_STEP_FRAMES} frames' "
                         f"worth ({budget} tokens, MAX_STEP_FRAMES) that keeps a step bounded; the official "
                         "layout needs about 12: use a shorter section, fewer or more compressed context blocks, "
                         "or the 'td' tail instead of 'ta'")


def step_codebook_k(step: Step) -> int | None:
    """The codebook size a step's ``+D`` schedule asks for, or None without ``+D``."""
    if not step.schedule.discrete:
        return None
    return DEFAULT_K if step.schedule.codebook_k is None else step.schedule.codebook_k


def _codebooks(backend, plan: Plan) -> dict[int, torch.Tensor]:
    """The codebook of every ``K`` the plan's ``+D`` steps need; refused before any work when the
    backend has none of that size."""
    ks = {k for k in map(step_codebook_k, plan.steps) if k is not None}
    if ks:
        check_features(backend, discrete_history=True)
    return {k: backend.codebook(k) for k in sorted(ks)}


def _check_history_options(backend, history_noise: float | None, history_guidance: float) -> float:
    """Validate the anti-drifting options against each other and the backend; returns the noise level."""
    if history_noise is None:
        history_noise = DEFAULT_HISTORY_NOISE if HISTORY_NOISE in backend.features else 0.0
    if not (isinstance(history_noise, (int, float)) and 0.0 <= float(history_noise) < 1.0):
        raise ValueError(f"history_noise must be a flow time in [0, 1), got {history_noise!r} "
                         "(0 = clean history; the tiny model was trained with levels up to 0.6)")
    if not (isinstance(history_guidance, (int, float)) and math.isfinite(history_guidance) and history_guidance >= 0):
        raise ValueError(f"history_guidance must be a finite weight >= 0, got {history_guidance!r} (1 = no guidance)")
    check_features(backend, history_noise=float(history_noise) > 0,
                   history_guidance=float(history_guidance) != 1.0)
    return float(history_noise)


def _guided_velocity(backend, context, w: float, extra: tuple, ledger: CacheLedger) -> Callable:
    """The sampler's velocity for one section: plain, or history guidance
    ``v = v_none + w (v_history - v_none)`` (classifier-free guidance over the history)."""
    def plain(xt, s):
        return backend.velocity(xt, s.to(xt.device), context, *extra)
    if w == 1.0:
        return plain
    empty = dataclasses.replace(context, groups=[], history_noise=0.0, prepared=None)
    empty = dataclasses.replace(empty, prepared=ledger.prepare(backend, empty))

    def guided(xt, s):
        v_none = backend.velocity(xt, s.to(xt.device), empty, *extra)
        return v_none + w * (plain(xt, s) - v_none)
    return guided
