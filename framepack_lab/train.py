"""Train the embedded tiny FramePack: ``python -m framepack_lab.train --config CONFIG --out DIR``.

Two stages, one config, one seed:

1. **autoencoder** on random world frames (MSE), then a *latent bank*: held-in world videos
   encoded once, and the per-channel latent statistics used to normalise them;
2. **DiT** by flow matching with x0 prediction. Every batch draws a sampling order, a schedule
   (from the presets the notebooks offer, with random tail options), a video length and one step
   of that plan, so one checkpoint serves every schedule, tail option and order. The loss is the
   x0 error weighted by ``1 / (sigma^2 + 0.1)``. Against drift, the history is noised to a random
   flow time the model is told (``history_noise_*``, Diffusion Forcing), and dropped entirely in
   a fraction of batches (``history_dropout``) so the same model predicts without history, for
   history guidance. For the orders in ``dit.true_time_orders`` (the inverted
   order in the shipped config) each frame is the real frame at its RoPE time position
   (:func:`training_clip`). AdamW, warm-up + cosine, EMA. ``dit.phases`` changes settings from a
   given step (a curriculum): less history noise, a loss weight on what moves
   (``motion_weight``; only for the orders in ``motion_weight_orders`` when that is given),
   batches from a second bank of worlds with an occluder band
   (``occluded_prob``, ``data.occluded_videos``: sprites that hide and come back, for the
   forgetting probe) and history snapped to a K-means codebook (``discrete_prob``,
   ``discrete_train_ks``: discrete history, ``+D``). The codebooks (``data.codebook_ks``) are
   fitted on the latent bank and ship inside the exported checkpoint.

Checkpoints (``DIR/state.safetensors`` + ``DIR/state.json``, :mod:`~framepack_lab.train_state`)
are written every ``checkpoint_every`` steps and on exit; ``--resume`` continues from them. The
EMA weights are exported to ``DIR/tiny/`` (``load_tiny(DIR / "tiny")``) with a training record.
``--init-from CKPT`` fine-tunes an exported checkpoint instead of starting from scratch
(:mod:`~framepack_lab.train_init`: its autoencoder, codebooks and DiT weights, a fresh AdamW).
The same code runs on CPU and CUDA (``--device cuda``).

:class:`Trainer` is the loop as an object (``setup``, ``step``, ``save``, ``export``, ``run`` with a
``stop`` callback, ``on_step`` / ``on_checkpoint`` hooks) for notebooks; :func:`train` runs it.
``--preset smoke|cpu_hour|gpu_minutes`` trains a named preset (:data:`PRESETS_DIR`: the shipped
config with documented overrides). Several processes train one model with DistributedDataParallel,
with no other change::

    accelerate launch --multi_gpu --num_processes 4 -m framepack_lab.train --device cuda --out DIR

(``torchrun --nproc_per_node 4 -m framepack_lab.train ...`` too; on CPUs, ``--device cpu`` uses the
gloo backend). ``DIR`` must be shared by all processes; ``dit.batch`` is per process.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import platform
import random
import time
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch
import torch.nn.functional as F

from . import world
from .models.autoencoder import TinyAutoencoder
from .models.tiny import TinyConfig, TinyFramePack, save_tiny
from .packing import pack
from .plan import ORDERS, Plan, Step, check_gap, make_plan
from .runtime import resolve_device, save_safetensors
from .sampler import noised, time_shift
from .schedule import PRESETS, Schedule
from .train_init import read_init
from .train_state import load_state, save_state

DEFAULT_CONFIG = Path(__file__).resolve().parent / "assets" / "tiny_train.json"
# named overrides of DEFAULT_CONFIG (smoke: CI; cpu_hour: a laptop CPU; gpu_minutes: one GPU)
PRESETS_DIR = DEFAULT_CONFIG.parent / "train_presets"

# (order, schedule preset, weight) the model learns; the notebooks offer these (and their tail variants)
TRAIN_MIX = [
    ("inverted_anti_drifting", "inverted", 4.0),
    ("inverted_anti_drifting", "inverted_official_history", 1.0),
    ("vanilla", "temporal_kernel", 3.0),
    ("vanilla", "temporal_kernel_1x", 1.0),
    ("vanilla", "geometric", 1.0),
    ("vanilla", "level_duplication", 1.0),
    ("vanilla", "symmetric", 1.0),
    ("f1", "important_start", 2.0),
    ("anti_drifting", "anti_drifting", 2.0),
]
SECTION_LENGTHS = [(4, 0.85), (2, 0.03), (3, 0.03), (6, 0.03), (8, 0.03), (9, 0.03)]
AE_WARMUP = 50  # autoencoder learning-rate warm-up steps (the DiT's is dit.warmup in the config)
SELF_HISTORY_SIGMA = (0.3, 0.9)  # flow-time range of recycled history's one-shot estimate (dit.self_history_sigma)
WORLD_TIMES = 400  # autoencoder frames are drawn from times 0 .. 399 of random training worlds


def phase_settings(dc: dict, step: int) -> dict:
    """The DiT settings at ``step``: ``dc`` updated by every entry of ``dc["phases"]`` whose
    ``from_step`` has been reached (a curriculum, e.g. less history noise late in training, so the
    model learns to read fine motion from a cleaner history). ``dc`` itself when no phase applies."""
    active = [ph for ph in dc.get("phases", ()) if step >= ph["from_step"]]
    if not active:
        return dc
    out = dict(dc)
    for ph in active:
        out.update({k: v for k, v in ph.items() if k != "from_step"})
    return out


def warmup_cosine(step: int, base_lr: float, warmup: int, total: int) -> float:
    """The learning rate of both stages: linear warm-up over ``warmup`` steps, then a cosine from
    ``base_lr`` down to 10% of it at step ``total`` (held there after)."""
    warm = min(1.0, (step + 1) / warmup)
    return base_lr * warm * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(step, total) / total)))


# Every key a training config may hold, per section; anything else is refused (a typo would
# otherwise be trained around silently). ``model`` keys are TinyConfig's fields.
CONFIG_KEYS = {
    "top": {"seed", "model", "ae", "data", "dit", "checkpoint_every"},
    "ae": {"steps", "batch", "lr", "latent_noise"},
    "data": {"videos", "frames", "occluded_videos", "codebook_ks", "trail"},
    "dit": {"steps", "batch", "lr", "warmup", "weight_decay", "ema", "train_shift", "history_noise_prob",
            "history_noise_max", "history_dropout", "first_step_prob", "true_time_orders", "phases",
            "motion_weight", "motion_weight_orders", "occluded_prob", "discrete_prob", "discrete_train_ks",
            "self_history_prob", "self_history_sigma", "inverted_gap"},
}
PHASE_FIXED = {"steps", "batch", "lr", "warmup", "weight_decay", "ema", "phases"}  # set once for the whole run


def check_config(cfg: dict) -> None:
    """``ValueError`` naming any key of ``cfg`` the trainer would not read (see :data:`CONFIG_KEYS`),
    any phase without a whole-number ``from_step`` or changing a run-wide setting, and any
    order name in ``true_time_orders`` / ``motion_weight_orders`` that is not an order, and an
    ``inverted_gap`` that :func:`framepack_lab.plan.check_gap` refuses, and a ``data.trail`` that is not a bool."""
    def unknown(keys, allowed, where):
        extra = sorted(set(keys) - set(allowed))
        if extra:
            raise ValueError(f"training config: unknown key(s) {extra} in {where}; allowed: {sorted(allowed)}")

    if not isinstance(cfg, dict):
        raise ValueError(f"a training config is a dict (JSON object), got {type(cfg).__name__}")
    unknown(cfg, CONFIG_KEYS["top"], "the top level")
    for section in ("ae", "data", "dit"):
        unknown(cfg.get(section, {}), CONFIG_KEYS[section], f'"{section}"')
    model_fields = {f.name for f in dataclasses.fields(TinyConfig)}
    unknown(cfg.get("model", {}), model_fields, '"model"')
    if not isinstance(cfg.get("data", {}).get("trail", False), bool):
        raise ValueError(f'training config: "data"."trail" is true or false (draw motion trails), '
                         f'got {cfg["data"]["trail"]!r}')
    dc = cfg.get("dit", {})
    for i, ph in enumerate(dc.get("phases", ())):
        where = f'"dit"."phases"[{i}]'
        if not isinstance(ph.get("from_step"), int) or isinstance(ph.get("from_step"), bool) or ph["from_step"] < 0:
            raise ValueError(f"training config: {where} needs a whole-number from_step >= 0, got {ph.get('from_step')!r}")
        unknown(ph, (CONFIG_KEYS["dit"] - PHASE_FIXED) | {"from_step"}, where)
    for scope in [dc, *dc.get("phases", ())]:
        for key in ("true_time_orders", "motion_weight_orders"):
            if scope.get(key) is not None and not isinstance(scope[key], (list, tuple)):
                raise ValueError(f"training config: {key} is a list of sampling orders, got {scope[key]!r}; "
                                 f'write ["{scope[key]}"] for one order')
            bad = [o for o in (scope.get(key) or ()) if o not in ORDERS]
            if bad:
                raise ValueError(f"training config: {key} names {bad}, not sampling orders; choose from {ORDERS}")
        if "inverted_gap" in scope:
            try:
                check_gap(scope["inverted_gap"])
            except ValueError as e:
                raise ValueError(f"training config: inverted_gap: {e}") from None


def load_config(path: str | Path) -> dict:
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"training config {path} not found; the shipped one is {DEFAULT_CONFIG}")
    return json.loads(path.read_text())


def preset_names() -> list[str]:
    """The training presets in :data:`PRESETS_DIR` (``smoke``, ``cpu_hour``, ``gpu_minutes``)."""
    return sorted(p.stem for p in PRESETS_DIR.glob("*.json"))


def preset_info(name: str) -> dict:
    """A preset file as written: ``{"description", "device", "measured", "overrides"}``."""
    path = PRESETS_DIR / f"{name}.json"
    if not path.exists():
        raise ValueError(f"unknown training preset {name!r}; choose one of {', '.join(preset_names())}")
    return json.loads(path.read_text())


def merge_config(base: dict, overrides: dict) -> dict:
    """``base`` with ``overrides`` applied: dicts merge key by key (recursively), any other value
    (lists such as ``dit.phases`` included) replaces the base's. Neither argument is changed."""
    out = json.loads(json.dumps(base))
    for k, v in overrides.items():
        out[k] = merge_config(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def load_preset(name: str) -> dict:
    """The training config of preset ``name``: the committed :data:`DEFAULT_CONFIG` with the
    preset's ``overrides`` (:func:`merge_config`). ``ValueError`` naming the presets for an unknown one."""
    return merge_config(load_config(DEFAULT_CONFIG), preset_info(name)["overrides"])


def _seed_all(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def _world_frames(rng: np.random.Generator, n: int, size: int = world.SIZE, trail: bool = False) -> torch.Tensor:
    """``n`` random training-world frames ``(n, 3, size, size)``."""
    seeds = rng.integers(world.TRAIN_SEEDS.start, world.TRAIN_SEEDS.stop, size=n)
    times = rng.integers(0, WORLD_TIMES, size=n)
    frames = np.stack([world.render(world.make_world(int(s), size, trail=trail), [int(t)])[0]
                       for s, t in zip(seeds, times)])
    return torch.from_numpy(frames).permute(0, 3, 1, 2).contiguous()


def psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    """Peak signal-to-noise ratio in dB of images in [0, 1]."""
    mse = F.mse_loss(a.clamp(0, 1), b.clamp(0, 1)).item()
    return 10 * math.log10(1.0 / max(mse, 1e-12))


# ----------------------------------------------------------------------------- autoencoder
def train_autoencoder(cfg: dict, device: torch.device, log, progress: bool = True) -> tuple[TinyAutoencoder, dict]:
    """Stage 1. Returns the autoencoder and a record (steps, seconds, held-out PSNR)."""
    from tqdm.auto import tqdm

    mc, ac = TinyConfig.from_dict(cfg["model"]), cfg["ae"]
    rng = np.random.default_rng(cfg["seed"])
    ae = TinyAutoencoder(mc.latent_channels, mc.ae_width).to(device)
    opt = torch.optim.AdamW(ae.parameters(), lr=ac["lr"], weight_decay=0.0)
    steps = ac["steps"]
    t0 = time.time()
    for step in tqdm(range(steps), desc="autoencoder", disable=not progress):
        for g in opt.param_groups:
            g["lr"] = warmup_cosine(step, ac["lr"], AE_WARMUP, steps)
        x = _world_frames(rng, ac["batch"], mc.frame_size, world.config_trail(cfg)).to(device)
        z = ae.encode_images(x)
        z_noisy = z + ac["latent_noise"] * z.detach().std() * torch.randn_like(z)  # robust decoder
        rec = ae.decode_images(z_noisy)
        loss = F.mse_loss(rec, x) + 0.5 * F.l1_loss(rec, x) + 1e-4 * z.pow(2).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if step % 50 == 0 or step == steps - 1:
            log({"stage": "ae", "step": step, "loss": loss.item()})
    seconds = time.time() - t0
    ae.eval()
    heldout = held_out_psnr(ae, device, frame_size=mc.frame_size, trail=world.config_trail(cfg))
    log({"stage": "ae", "done": True, "seconds": seconds, "heldout_psnr": heldout})
    return ae, {"steps": steps, "seconds": round(seconds, 1), "heldout_psnr_db": round(heldout, 2)}


@torch.no_grad()
def held_out_psnr(ae: TinyAutoencoder, device, n_videos: int = 16, n_frames: int = 8,
                  frame_size: int = world.SIZE, trail: bool = False) -> float:
    """Reconstruction PSNR (dB) on ``frame_size`` x ``frame_size`` frames of held-out worlds."""
    seeds = list(world.HELDOUT_SEEDS)[:n_videos]
    x = world.batch(seeds, n_frames, size=frame_size, trail=trail).reshape(-1, 3, frame_size, frame_size).to(device)
    return psnr(ae.decode_images(ae.encode_images(x)), x)


@torch.no_grad()
def build_latent_bank(ae: TinyAutoencoder, cfg: dict, device, progress: bool = True,
                      occluded: bool = False, fit_statistics: bool = True) -> torch.Tensor:
    """Encode training videos once: ``(N, C, F, h, w)`` float16 (``16 x 16`` latents of 64 x 64
    frames), normalised. The plain bank (``data.videos`` worlds) sets the autoencoder's latent
    statistics, unless ``fit_statistics=False`` (an autoencoder taken from a checkpoint keeps its
    own); ``occluded=True`` builds the bank of ``data.occluded_videos`` worlds with an
    occluder band (other seeds). Banks that do not set the statistics are normalised with the
    autoencoder's."""
    from tqdm.auto import tqdm

    dc = cfg["data"]
    size = TinyConfig.from_dict(cfg["model"]).frame_size
    rng = np.random.default_rng(cfg["seed"] + (3 if occluded else 1))
    seeds = rng.choice(world.TRAIN_SEEDS.stop, size=dc["occluded_videos" if occluded else "videos"], replace=False)
    chunks = []
    for s in tqdm(seeds, desc="occluded bank" if occluded else "latent bank", disable=not progress):
        frames = torch.from_numpy(world.video(int(s), dc["frames"], start=int(rng.integers(0, 300)), size=size,
                                              occluded=occluded, trail=world.config_trail(cfg)))
        z = ae.encode_images(frames.permute(0, 3, 1, 2).to(device))  # (F, C, h, w)
        chunks.append(z.permute(1, 0, 2, 3).half().cpu())
    bank = torch.stack(chunks)  # (N, C, F, h, w)
    if occluded or not fit_statistics:
        mean, std = ae.latent_mean.cpu(), ae.latent_std.cpu()
        return ((bank.float() - mean[None, :, None, None, None]) / std[None, :, None, None, None]).half()
    mean = bank.float().mean(dim=(0, 2, 3, 4))
    std = bank.float().std(dim=(0, 2, 3, 4))
    ae.latent_mean.copy_(mean.to(device))
    ae.latent_std.copy_(std.to(device))
    return ((bank.float() - mean[None, :, None, None, None]) / std[None, :, None, None, None]).half()


# ------------------------------------------------------------------------------------ DiT
def _pick(rng: random.Random, items):
    return rng.choices([i[:-1] if len(i) > 2 else i[0] for i in items], weights=[i[-1] for i in items])[0]


class TrainTask(NamedTuple):
    """What one training batch learns: a step of a plan (unpacks as ``order, schedule, plan, step``)."""

    order: str
    schedule: Schedule
    plan: Plan
    step: Step


def sample_task(rng: random.Random, max_frames: int, dc: dict | None = None) -> TrainTask:
    """Draw the :class:`TrainTask` (order, schedule, plan, plan step) of one batch.

    ``dc["first_step_prob"]`` (default 0) is the chance of taking the plan's first step instead of
    a uniform one: the inverted order's first section, far from its anchor, is the one that fails.
    ``dc["inverted_gap"]`` (default the official capped gap) is the inverted order's RoPE gap
    (:func:`framepack_lab.plan.inverted_padding`); with ``true_time_orders`` the frames it trains
    on lie as far from the anchor as that gap says.
    """
    order, key = _pick(rng, TRAIN_MIX)
    sched = PRESETS[key].schedule
    S = _pick(rng, SECTION_LENGTHS)
    tail = sched.tail
    if tail is not None and rng.random() < 0.3:
        tail = rng.choice(["ta", "tc"])
    sched = dataclasses.replace(sched, generated=S, tail=tail)
    n_frames = rng.randint(S + 1, max_frames - S)
    gap = (dc or {}).get("inverted_gap") if order == "inverted_anti_drifting" else None
    plan = make_plan(order, n_frames, sched, gap=gap)
    if rng.random() < (dc or {}).get("first_step_prob", 0.0):
        step = plan.steps[0]
    else:
        step = rng.choice(plan.steps)
    return TrainTask(order, sched, plan, step)


def step_times(step) -> dict[int, int]:
    """``{frame index: RoPE time position}`` of every frame a plan step generates or sees."""
    times = dict(zip(step.generated, step.positions))
    for g in step.groups:
        times.update(zip(g.frames, g.positions))
    return times


def training_clip(bank: torch.Tensor, idx: torch.Tensor, order: str, plan, step, dc: dict,
                  rng: random.Random) -> torch.Tensor:
    """The latent video one training step sees: ``(B, C, plan.total_frames, h, w)`` from the bank
    ``(N, C, F, h, w)``, videos ``idx``.

    By default frame ``f`` is frame ``start + f`` of a real clip, whatever its RoPE position (a
    skipped gap is "some frames away"). For orders in ``dc["true_time_orders"]`` every frame of the
    step is the real frame at its RoPE *position* instead, so a capped gap (the inverted order's
    padding) means what it says: the anchor really is that many frames away. Frames the step does
    not use are zero.
    """
    F_ = bank.shape[2]
    if order not in dc.get("true_time_orders", ()):
        start = rng.randint(0, F_ - plan.total_frames)
        return bank[idx, :, start:start + plan.total_frames]
    times = step_times(step)
    lo, hi = min(times.values()), max(times.values())
    start = rng.randint(0, F_ - (hi - lo + 1))
    frames = sorted(times)
    video = torch.zeros(len(idx), bank.shape[1], plan.total_frames, *bank.shape[3:], dtype=bank.dtype)
    video[:, :, frames] = bank[idx][:, :, [start + times[f] - lo for f in frames]]
    return video


def training_loss(model: TinyFramePack, bank: torch.Tensor, task: TrainTask, dc: dict, gen: torch.Generator,
                  rng: random.Random, device, codebooks: dict | None = None) -> torch.Tensor:
    """Flow-matching loss of one batch drawn from the latent bank for one plan step.

    With ``codebooks`` ``{K: (K, C)}``, a fraction ``dc["discrete_prob"]`` of batches sees its
    history snapped to the codebook of a ``K`` drawn from ``dc["discrete_train_ks"]`` (``+D``)."""
    order, _, plan, step = task
    B = dc["batch"]
    idx = torch.randint(0, bank.shape[0], (B,), generator=gen)
    video = training_clip(bank, idx, order, plan, step, dc, rng).float().to(device)  # (B, C, T, h, w)
    p_self = dc.get("self_history_prob", 0.0)
    if p_self > 0 and order not in dc.get("true_time_orders", ()) and step.index > 0 and rng.random() < p_self:
        video = recycle_history(model, video, plan.steps[step.index - 1], dc, gen)
    x0 = video[:, :, list(step.generated)]
    level = 0.0
    if model.config.history_noise:  # Diffusion Forcing: noise the history, tell the model how much
        noisy = (torch.rand(B, generator=gen) < dc["history_noise_prob"]).float()
        level = noisy * torch.rand(B, generator=gen) * dc["history_noise_max"]
    codebook = None
    if codebooks and dc.get("discrete_prob", 0.0) > 0 and rng.random() < dc["discrete_prob"]:  # '+D': snap the history to a codebook
        codebook = codebooks[rng.choice(dc["discrete_train_ks"])].to(device)
    context = pack(video, step, model.kernels, history_noise=level, generator=gen, codebook=codebook)
    if order in dc.get("true_time_orders", ()):  # the clip put every frame at its RoPE time: nothing is hidden
        context = dataclasses.replace(context, hidden_time=0)
    if rng.random() < dc.get("history_dropout", 0.0):  # no history at all: for history guidance
        context = dataclasses.replace(context, groups=[], history_noise=0.0)
    u = torch.rand(B, generator=gen)
    sigma = time_shift(u, dc["train_shift"]).to(device)  # shift u / (1 + (shift - 1) u), toward noise
    eps = torch.randn(x0.shape, generator=gen).to(device)
    pred = model(noised(x0, sigma, eps), sigma, context)
    s = sigma.view(-1, 1, 1, 1, 1)
    weight = 1.0 / (s**2 + 0.1)
    beta = dc.get("motion_weight", 0.0)
    if dc.get("motion_weight_orders") is not None and order not in dc["motion_weight_orders"]:
        beta = 0.0  # the weight only where it is asked for (e.g. the inverted order's far-from-anchor sections)
    if beta:
        weight = weight * (1 + beta * motion_map(x0))
    return (weight * (pred - x0) ** 2).mean()


def recycle_history(model: TinyFramePack, video: torch.Tensor, prev: Step, dc: dict,
                    gen: torch.Generator) -> torch.Tensor:
    """``video`` ``(B, C, T, h, w)`` with the frames of ``prev`` (the plan step generated just before
    the one being trained, so the newest part of its history) replaced by the model's own estimate.

    The estimate is one x0 prediction from the true frames noised to a level drawn uniformly from
    ``dc["self_history_sigma"]`` (default :data:`SELF_HISTORY_SIGMA`), packed from the true context: a cheap
    stand-in for the blobby section the model itself would draw there, so the step learns to
    continue such a history with the true next section rather than copy its errors (exposure
    bias; Self Forcing's idea at one section's depth, "error recycling"). No gradient flows
    through it. Orders in ``dc["true_time_orders"]`` are left out (their clip holds only the
    frames of the step being trained, not all of ``prev``'s context).
    """
    lo, hi = dc.get("self_history_sigma", SELF_HISTORY_SIGMA)
    B = video.shape[0]
    net = getattr(model, "module", model)  # the bare model under DDP: no gradient sync for this pass
    frames = list(prev.generated)
    x0 = video[:, :, frames]
    sigma = (lo + (hi - lo) * torch.rand(B, generator=gen)).to(video.device)
    eps = torch.randn(x0.shape, generator=gen).to(video.device)
    with torch.no_grad():
        estimate = net(noised(x0, sigma, eps), sigma, pack(video, prev, net.kernels))
    out = video.clone()
    out[:, :, frames] = estimate.to(out.dtype)
    return out


def motion_map(x0: torch.Tensor) -> torch.Tensor:
    """Where the section changes over time, ``(B, 1, S, h, w)``, mean 1 per example.

    ``|x0[t] - x0[t-1]|`` averaged over channels (the first frame takes the next frame's map), so
    the loss weight ``1 + motion_weight * map`` stresses the moving edges of sprites: copying the
    last frame, which costs little under a plain loss when sprites move a fraction of a latent
    pixel per frame, then costs as much as it is wrong. A one-frame section gives all ones.
    """
    if x0.shape[2] < 2:
        return torch.ones_like(x0[:, :1])
    d = (x0[:, :, 1:] - x0[:, :, :-1]).abs().mean(dim=1, keepdim=True)  # (B, 1, S-1, h, w)
    d = torch.cat([d[:, :, :1], d], dim=2)
    return d / d.mean(dim=(2, 3, 4), keepdim=True).clamp_min(1e-6)


# --------------------------------------------------------------------------- distributed
RANK_SEED_STRIDE = 1_000_003  # rank r draws its batches from seed + start + r * this (rank 0: the single-process draws)
DIST_TIMEOUT_S = 2 * 3600  # ranks > 0 wait at a barrier while rank 0 runs stage 1


class DistEnv(NamedTuple):
    """Where this process sits in a distributed run: ``rank`` of ``world_size`` processes,
    ``local_rank`` on its machine. ``world_size == 1`` for a plain ``python -m`` run."""

    rank: int
    world_size: int
    local_rank: int

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


def dist_env(environ=None) -> DistEnv:
    """The :class:`DistEnv` set by ``accelerate launch`` / ``torchrun`` (``RANK``, ``WORLD_SIZE``,
    ``LOCAL_RANK``); a single process when they are absent. ``ValueError`` for values that do not fit."""
    environ = os.environ if environ is None else environ
    try:
        world_size = int(environ.get("WORLD_SIZE", "1"))
        rank = int(environ.get("RANK", "0"))
        local_rank = int(environ.get("LOCAL_RANK", str(rank)))
    except ValueError:
        raise ValueError("RANK, WORLD_SIZE and LOCAL_RANK must be whole numbers (as accelerate launch or torchrun "
                         f"set them), got {environ.get('RANK')!r}, {environ.get('WORLD_SIZE')!r}, "
                         f"{environ.get('LOCAL_RANK')!r}") from None
    if world_size < 1 or not 0 <= rank < world_size or local_rank < 0:
        raise ValueError(f"inconsistent launch environment: RANK={rank}, WORLD_SIZE={world_size}, "
                         f"LOCAL_RANK={local_rank}; launch with accelerate launch or torchrun, or unset them")
    return DistEnv(rank, world_size, local_rank)


def _replica_module(module: torch.nn.Module) -> torch.nn.Module:
    """``module`` wrapped in DistributedDataParallel (gradients averaged over the ranks during
    ``backward``), still answering the attributes :func:`training_loss` reads (``config``, ``kernels``)."""
    from torch.nn.parallel import DistributedDataParallel

    class Replica(DistributedDataParallel):
        def __getattr__(self, name):
            try:
                return super().__getattr__(name)
            except AttributeError:
                return getattr(self.module, name)

    # each batch draws its own plan step: kernels (and the history MLP under history dropout) a
    # rank's batch does not use get no gradient there, so DDP must look for unused parameters
    return Replica(module, find_unused_parameters=True)


# ------------------------------------------------------------------------------- trainer
class Trainer:
    """Training as a stepping object: :meth:`setup` (stage 1 and the DiT), :meth:`step` (one DiT
    step), :meth:`save` (resumable checkpoint + export), :meth:`run` (steps until done or stopped).

    :func:`train` and the CLI are ``Trainer(...).run()``; notebooks (:class:`~framepack_lab.widgets.TrainPanel`)
    step it themselves. A single-process run draws exactly what :func:`train` always drew (the
    pinned-numerics test). Under ``accelerate launch`` / ``torchrun`` (:func:`dist_env`) it trains
    with DistributedDataParallel: rank 0 runs stage 1 and the others read its files (``out`` must
    be shared), every rank draws its own batches (seed offset :data:`RANK_SEED_STRIDE` per rank),
    gradients are averaged, and only rank 0 writes logs, checkpoints and the export.

    Args:
        cfg: a training config (:func:`load_config`, :func:`load_preset`).
        out: output folder (``state.*``, ``log.jsonl``, ``tiny/``, the autoencoder and banks).
        device: ``"cpu"``, ``"cuda"``, ``"auto"``, ...; refused (``ValueError``) before any work when
            this machine lacks it. In a distributed run ``"cuda"`` means ``cuda:LOCAL_RANK``.
        resume: continue from ``out/state.safetensors`` (reusing the autoencoder and banks).
        steps: override ``dit.steps``.
        init_from: an exported checkpoint folder to fine-tune (:mod:`~framepack_lab.train_init`):
            its autoencoder, codebooks and DiT weights replace stage 1's training and the DiT's
            initialisation; checked against the config before any work. A resumed run goes on
            from its own state, which already started there.
        progress: tqdm bars (rank 0).
        on_step: called after every DiT step with :meth:`step`'s dict (rank 0).
        on_checkpoint: called with the step after every checkpoint is written (rank 0).

    A single-process checkpoint also holds the batch-drawing RNG states, so a run stopped at any
    step and resumed ends with the same weights as an uninterrupted one (checkpoints written before
    that, and distributed ones, reseed from ``seed + step`` on resume, as they always did).
    """

    def __init__(self, cfg: dict, out: str | Path, device: str = "cpu", resume: bool = False,
                 steps: int | None = None, progress: bool = True, on_step=None, on_checkpoint=None,
                 init_from: str | Path | None = None):
        if steps is not None and (isinstance(steps, bool) or not isinstance(steps, int) or steps < 0):
            raise ValueError(f"steps must be a whole number >= 0 (DiT steps to reach), got {steps!r}")
        self.env = dist_env()
        dev = resolve_device(device)
        if self.env.distributed and dev.type == "cuda" and dev.index is None:
            dev = torch.device("cuda", self.env.local_rank)  # one GPU per process
        self.cfg, self.out, self.device = cfg, Path(out), dev
        self.resume, self.progress = resume, progress
        self.on_step, self.on_checkpoint = on_step, on_checkpoint
        check_config(cfg)
        self.dc = dict(cfg["dit"])
        if steps is not None:
            self.dc["steps"] = steps
        self.mc = TinyConfig.from_dict(cfg["model"])
        self.init = (read_init(init_from, self.mc, cfg["data"].get("codebook_ks", ()))
                     if init_from is not None else None)
        self.step_count = 0  # DiT steps done
        self.loss_avg: float | None = None
        self.stopped = False
        self._ready = False
        self._logf = None

    @property
    def is_main(self) -> bool:
        """Rank 0 (the only process in a plain run): the one that writes files."""
        return self.env.rank == 0

    @property
    def total_steps(self) -> int:
        return self.dc["steps"]

    @property
    def ready(self) -> bool:
        """Whether :meth:`setup` has run (stage 1 done, the DiT built)."""
        return self._ready

    @property
    def done(self) -> bool:
        return self.step_count >= self.dc["steps"]

    def log(self, d: dict) -> None:
        """Append ``d`` to ``out/log.jsonl`` (rank 0)."""
        if self._logf is not None:
            self._logf.write(json.dumps(d) + "\n")
            self._logf.flush()

    # ---------------------------------------------------------------------------- setup
    def setup(self) -> "Trainer":
        """Stage 1 (autoencoder, latent banks, codebooks; reused from ``out`` when resuming) and the
        DiT, its EMA and AdamW (loaded from the checkpoint when resuming). Idempotent."""
        if self._ready:
            return self
        cfg, dc, mc, out, device = self.cfg, self.dc, self.mc, self.out, self.device
        if self.env.distributed:
            import datetime

            import torch.distributed as dist

            if not dist.is_initialized():
                dist.init_process_group("nccl" if device.type == "cuda" else "gloo",
                                        timeout=datetime.timedelta(seconds=DIST_TIMEOUT_S))
        if self.is_main:
            out.mkdir(parents=True, exist_ok=True)
            self._logf = open(out / "log.jsonl", "a")
        _seed_all(cfg["seed"])

        # stage 1: autoencoder (reused when resuming; ranks > 0 read what rank 0 wrote)
        if self.is_main:
            self._stage1(resume=self.resume)
        self._barrier()
        if not self.is_main:
            if not (out / "autoencoder.safetensors").exists():
                raise ValueError(f"rank {self.env.rank} cannot see rank 0's stage-1 files in {out}: in a "
                                 "distributed run --out must be a folder every process shares (same path)")
            self._stage1(resume=True)
        self._barrier()  # nobody rewrites a file another rank is still reading

        # stage 2: DiT (seeded on its own, so a run resumed after stage 1 matches an uninterrupted one)
        torch.manual_seed(cfg["seed"] + 2)
        self.model = TinyFramePack(mc).to(device)
        self.ema = TinyFramePack(mc).to(device)
        self.ema.load_state_dict(self.model.state_dict())
        self.ema.requires_grad_(False)
        self.opt = torch.optim.AdamW(self.model.parameters(), lr=dc["lr"], weight_decay=dc["weight_decay"],
                                     betas=(0.9, 0.99))
        start, self.record, rng_state = 0, {"dit_seconds": 0.0, "losses": []}, None
        if self.resume and (out / "state.safetensors").exists():
            start, self.record, rng_state = load_state(out, self.model, self.ema, self.opt, with_rng=True)
        elif self.init is not None:  # a fine-tune: the checkpoint's weights; new parts keep their zero init
            self.model.load_state_dict(self.init.dit, strict=False)
            self.ema.load_state_dict(self.model.state_dict())
            self.record["init_from"] = {**self.init.record, "new_parts": list(self.init.new_parts)}
        self.step_count = start
        seed = cfg["seed"] + start + self.env.rank * RANK_SEED_STRIDE
        self.rng = random.Random(seed)
        self.gen = torch.Generator().manual_seed(seed)
        if rng_state is not None and not self.env.distributed:  # where the stopped run would have gone on
            self.rng.setstate(rng_state["python"])
            self.gen.set_state(rng_state["torch"])
        self.forward_model = _replica_module(self.model) if self.env.distributed else self.model
        self.n_params = sum(p.numel() for p in self.model.parameters())
        self.log({"stage": "dit", "params": self.n_params, "start": start})
        if self.env.distributed:
            self.log({"stage": "ddp", "world_size": self.env.world_size,
                      "backend": "nccl" if device.type == "cuda" else "gloo"})
        self._ready = True
        return self

    def _stage1(self, resume: bool) -> None:
        """The autoencoder, the latent bank(s) and the codebooks: trained and written to ``out``, or
        read from there when ``resume`` and they exist."""
        from safetensors.torch import load_file

        cfg, mc, out, device, progress = self.cfg, self.mc, self.out, self.device, self.progress and self.is_main
        ae_file = out / "autoencoder.safetensors"
        if resume and ae_file.exists():
            ae = TinyAutoencoder(mc.latent_channels, mc.ae_width).to(device)
            ae.load_state_dict(load_file(str(ae_file)))
            ae_record = json.loads((out / "autoencoder.json").read_text())
        elif self.init is not None:  # the checkpoint's autoencoder and latent statistics, not retrained
            ae = TinyAutoencoder(mc.latent_channels, mc.ae_width).to(device)
            ae.load_state_dict(self.init.ae)
            ae_record = {**self.init.ae_record, "from": self.init.record["path"]}
            self.log({"stage": "ae", "init_from": self.init.record["path"]})
        else:
            ae, ae_record = train_autoencoder(cfg, device, self.log, progress)
        ae.eval()
        for p in ae.parameters():
            p.requires_grad_(False)
        bank_file = out / "latent_bank.safetensors"
        if resume and bank_file.exists() and ae_file.exists():  # the bank of this autoencoder, encoded once
            bank = load_file(str(bank_file))["bank"]
        else:
            t_bank = time.time()
            bank = build_latent_bank(ae, cfg, device, progress,  # also sets the latent statistics, unless given
                                     fit_statistics=self.init is None)
            ae_record["bank_seconds"] = round(time.time() - t_bank, 1)
            save_safetensors({k: v.contiguous() for k, v in ae.state_dict().items()}, ae_file)
            (out / "autoencoder.json").write_text(json.dumps(ae_record))
            save_safetensors({"bank": bank.contiguous()}, bank_file)
        reuse = resume and ae_file.exists()
        self.occluded_bank = _cached_bank(out / "latent_bank_occluded.safetensors", reuse,
                                          lambda: build_latent_bank(ae, cfg, device, progress, occluded=True)
                                          ) if cfg["data"].get("occluded_videos") else None
        self.codebooks = _cached_codebooks(out / "codebooks.safetensors", reuse, bank,
                                           cfg["data"].get("codebook_ks", ()), cfg["seed"],
                                           given=self.init.codebooks if self.init is not None else None)
        self.ae, self.ae_record, self.bank = ae, ae_record, bank

    def _barrier(self) -> None:
        if self.env.distributed:
            import torch.distributed as dist

            dist.barrier()

    # ----------------------------------------------------------------------------- step
    def step(self) -> dict:
        """One DiT step (all ranks together in a distributed run). Returns ``{"step"`` (steps done),
        ``"loss"`` (this batch; the mean over ranks when distributed), ``"loss_ema"``, ``"lr"``,
        ``"order"``, ``"schedule"``, ``"seconds"`` (DiT seconds so far)``}``; calls ``on_step`` with it."""
        self.setup()
        if self.done:
            raise ValueError(f"training already reached its {self.dc['steps']} DiT steps; raise `steps` to go on")
        dc, step, t0 = self.dc, self.step_count, time.time()
        lr = warmup_cosine(step, dc["lr"], dc["warmup"], dc["steps"])
        for g in self.opt.param_groups:
            g["lr"] = lr
        sc = phase_settings(dc, step)
        task = sample_task(self.rng, self.bank.shape[2], sc)
        p_occ = sc.get("occluded_prob", 0.0) if self.occluded_bank is not None else 0.0
        source = self.occluded_bank if p_occ > 0 and self.rng.random() < p_occ else self.bank  # forgetting: hidden sprites
        loss = training_loss(self.forward_model, source, task, sc, self.gen, self.rng, self.device, self.codebooks)
        self.opt.zero_grad(set_to_none=True)
        loss.backward()  # DDP: gradients averaged over the ranks here
        torch.nn.utils.clip_grad_norm_(self.model.parameters(), 1.0)
        self.opt.step()
        with torch.no_grad():
            decay = min(dc["ema"], (1 + step) / (10 + step))
            for pe, pm in zip(self.ema.parameters(), self.model.parameters()):
                pe.lerp_(pm, 1 - decay)
        value, rank_losses = loss.item(), None
        if self.env.distributed:
            rank_losses = self._gather(loss.detach().reshape(1)).tolist()
            value = sum(rank_losses) / len(rank_losses)
        self.loss_avg = value if self.loss_avg is None else 0.98 * self.loss_avg + 0.02 * value
        self.record["dit_seconds"] += time.time() - t0
        self.step_count = step + 1
        info = {"step": self.step_count, "loss": value, "loss_ema": self.loss_avg, "lr": lr, "order": task.order,
                "schedule": task.schedule.name, "seconds": round(self.record["dit_seconds"], 1)}
        if step % 25 == 0:
            line = {"stage": "dit", "step": step, "loss": value, "loss_ema": self.loss_avg, "order": task.order,
                    "schedule": task.schedule.name, "seconds": round(self.record["dit_seconds"], 1)}
            if rank_losses is not None:
                line["rank_losses"] = rank_losses  # each rank's own batch
            self.log(line)
        if self.step_count % self.cfg["checkpoint_every"] == 0:
            self.record["losses"].append(round(self.loss_avg, 5))
            self.save()
        if self.on_step is not None and self.is_main:
            self.on_step(info)
        return info

    def _gather(self, t: torch.Tensor) -> torch.Tensor:
        """``t`` of every rank, concatenated in rank order."""
        import torch.distributed as dist

        parts = [torch.empty_like(t) for _ in range(self.env.world_size)]
        dist.all_gather(parts, t.contiguous())
        return torch.cat(parts).cpu()

    # ---------------------------------------------------------------------- save / export
    def save(self) -> None:
        """Write the resumable checkpoint (``state.*``) and the export (``tiny/``) at the current
        step (rank 0; other ranks return at once); calls ``on_checkpoint``."""
        if not self.is_main:
            return
        rng = None if self.env.distributed else {"python": self.rng.getstate(), "torch": self.gen.get_state()}
        save_state(self.out, self.model, self.ema, self.opt, self.step_count, self.record, rng=rng)
        self.export()
        if self.on_checkpoint is not None:
            self.on_checkpoint(self.step_count)

    def export(self) -> Path:
        """The EMA weights, the autoencoder and the codebooks as ``out/tiny`` (``load_tiny``), with
        the training record; returns the folder (rank 0 writes it)."""
        dc, record, device = self.dc, self.record, self.device
        rec = {"training_record": {
            "steps": self.step_count, "batch": dc["batch"], "dit_seconds": round(record["dit_seconds"], 1),
            "dit_params": self.n_params, "final_loss_ema": record["losses"][-1] if record["losses"] else None,
            "autoencoder": self.ae_record, "device": str(device), "torch": torch.__version__,
            "hardware": (torch.cuda.get_device_name(device) if device.type == "cuda"
                         else f"{platform.machine()} {os.cpu_count()} cores"),
            "threads": torch.get_num_threads(), "config": self.cfg}}
        if "init_from" in record:  # a fine-tune: what it started from (steps above are its own)
            rec["training_record"]["init_from"] = record["init_from"]
        if self.env.distributed:
            rec["training_record"]["world_size"] = self.env.world_size  # batch is per rank
        if self.is_main:
            save_tiny(self.out / "tiny", self.ema, self.ae, rec, self.codebooks)
        return self.out / "tiny"

    def backend(self):
        """The current EMA weights as a :class:`~framepack_lab.models.tiny.TinyBackend` (shared
        weights, in eval mode: sample between steps, do not train it)."""
        from .models.tiny import TinyBackend

        self.setup()
        return TinyBackend(self.ema.eval(), self.ae, device=self.device, codebooks=dict(self.codebooks),
                           trail=world.config_trail(self.cfg))

    # ------------------------------------------------------------------------------ run
    def run(self, stop=None) -> Path:
        """Step until ``dit.steps`` or until ``stop()`` returns True (checked between steps, on
        rank 0 and shared with the others); then write the checkpoint and the export, also when
        an exception ends the run. Returns ``out/tiny``."""
        from tqdm.auto import tqdm

        self.setup()
        bar = tqdm(total=self.dc["steps"], initial=self.step_count, desc="dit",
                   disable=not (self.progress and self.is_main))
        try:
            while not self.done:
                if self._should_stop(stop):
                    self.stopped = True
                    break
                self.step()
                bar.update(1)
                bar.set_postfix(loss=f"{self.loss_avg:.4f}")
        finally:
            bar.close()
            if self.loss_avg is not None:
                self.record["losses"].append(round(self.loss_avg, 5))
            self.save()
        if self.env.distributed:
            self._check_replicas()
        return self.out / "tiny"

    def _should_stop(self, stop) -> bool:
        flag = bool(stop()) if stop is not None and self.is_main else False
        if not self.env.distributed:
            return flag
        import torch.distributed as dist

        t = torch.tensor([float(flag)], device=self.device)
        dist.broadcast(t, 0)
        return bool(t.item())

    def _check_replicas(self) -> None:
        """Log whether every rank holds the same weights (they must, after averaged gradients)."""
        flat = torch.cat([p.detach().flatten() for p in self.model.parameters()])
        every = self._gather(flat).view(self.env.world_size, -1)
        same = all(torch.equal(every[0], every[r]) for r in range(1, self.env.world_size))
        self.log({"stage": "ddp", "step": self.step_count, "world_size": self.env.world_size,
                  "replicas_identical": same, "weight_sums": every.double().sum(dim=1).tolist()})

    def close(self) -> None:
        """Close the log (and leave the process group of a distributed run)."""
        if self._logf is not None:
            self._logf.close()
            self._logf = None
        if self.env.distributed:
            import gc

            import torch.distributed as dist

            # DDP's reducer holds the process group, and DDP's hooks keep it in a reference cycle:
            # free it here, or the group's gloo threads die during interpreter shutdown, which can
            # abort the process after a finished run ("terminate called without an active exception")
            if getattr(self, "forward_model", None) is not None:
                self.forward_model = self.model
                gc.collect()
            if dist.is_initialized():
                dist.destroy_process_group()


def time_budget(minutes: float | None):
    """A ``stop`` callable for :meth:`Trainer.run`: True once ``minutes`` have passed since this
    call (``None``: never). Training then ends between steps with a resumable checkpoint, as Stop
    does. ``ValueError`` for a budget that is not a positive number of minutes."""
    if minutes is None:
        return lambda: False
    if isinstance(minutes, bool) or not isinstance(minutes, (int, float)) or not minutes > 0 or math.isinf(minutes):
        raise ValueError(f"the time budget must be a positive number of minutes (or None for no limit), got {minutes!r}")
    deadline = time.monotonic() + 60.0 * minutes
    return lambda: time.monotonic() >= deadline


def train(cfg: dict, out: str | Path, device: str = "cpu", resume: bool = False, steps: int | None = None,
          progress: bool = True, stop=None, on_step=None, on_checkpoint=None, init_from: str | Path | None = None) -> Path:
    """Run both stages (:class:`Trainer`); returns the exported checkpoint folder ``out/tiny``.
    ``stop``, ``on_step``, ``on_checkpoint`` and ``init_from`` as in :meth:`Trainer.run` and :class:`Trainer`."""
    trainer = Trainer(cfg, out, device, resume, steps, progress, on_step=on_step, on_checkpoint=on_checkpoint,
                      init_from=init_from)
    try:
        return trainer.run(stop)
    finally:
        trainer.close()


def _cached_bank(path: Path, reuse: bool, build) -> torch.Tensor:
    """The bank in ``path`` when ``reuse`` and it exists, else ``build()`` saved there."""
    from safetensors.torch import load_file

    if reuse and path.exists():
        return load_file(str(path))["bank"]
    bank = build()
    save_safetensors({"bank": bank.contiguous()}, path)
    return bank


def _cached_codebooks(path: Path, reuse: bool, bank: torch.Tensor, ks, seed: int,
                      given: dict[int, torch.Tensor] | None = None) -> dict[int, torch.Tensor]:
    """Discrete-history codebooks ``{K: (K, C)}`` fitted on the latent bank (``data.codebook_ks``),
    or ``given`` (a fine-tune's, from its checkpoint), kept in ``path`` so a resumed run uses the
    same ones; empty when no ``K`` is configured."""
    from safetensors.torch import load_file

    from .discrete import fit_codebooks

    if not ks:
        return {}
    if reuse and path.exists():
        books = {int(k): v for k, v in load_file(str(path)).items()}
        if sorted(books) == sorted(int(k) for k in ks):
            return books
    books = dict(given) if given is not None else fit_codebooks(bank, ks, seed=seed)
    save_safetensors({str(k): v.contiguous() for k, v in books.items()}, path)
    return books


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", default=None, help="training config JSON (default: the shipped one)")
    p.add_argument("--preset", default=None, help=f"a named training preset instead of --config ({PRESETS_DIR.name}/)")
    p.add_argument("--out", default="runs/tiny", help="output folder (checkpoints, log.jsonl, tiny/)")
    p.add_argument("--device", default="cpu", help="cpu, cuda, mps, ... or auto (CUDA when available, else CPU); "
                   "under accelerate launch / torchrun, cuda is each process's own GPU")
    p.add_argument("--steps", type=int, default=None, help="override the DiT steps of the config")
    p.add_argument("--resume", action="store_true", help="continue from OUT/state.safetensors")
    p.add_argument("--init-from", default=None, metavar="DIR",
                   help="fine-tune an exported checkpoint (e.g. framepack_lab/assets/tiny): its autoencoder, "
                        "codebooks and DiT weights; fresh AdamW (give the config a warm-up)")
    p.add_argument("--max-minutes", type=float, default=None,
                   help="stop after this many minutes (stage 1 included) with a resumable checkpoint; --resume goes on")
    p.add_argument("--no-progress", action="store_true")
    a = p.parse_args(argv)
    if a.config is not None and a.preset is not None:
        p.error("give --config or --preset, not both (a preset is the shipped config with its overrides)")
    try:
        cfg = load_preset(a.preset) if a.preset is not None else load_config(a.config or DEFAULT_CONFIG)
        budget = time_budget(a.max_minutes)
        check_config(cfg)
        trainer = Trainer(cfg, a.out, a.device, a.resume, a.steps, not a.no_progress, init_from=a.init_from)
    except ValueError as e:
        p.error(str(e))
    try:
        path = trainer.run(budget)
    finally:
        trainer.close()
    if dist_env().rank == 0:
        print(f"exported {path}")


if __name__ == "__main__":
    main()
