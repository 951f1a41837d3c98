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
   (:func:`training_clip`). AdamW, warm-up + cosine, EMA.

Checkpoints (``DIR/state.safetensors`` + ``DIR/state.json``, :mod:`~framepack_lab.train_state`)
are written every ``checkpoint_every`` steps and on exit; ``--resume`` continues from them. The
EMA weights are exported to ``DIR/tiny/`` (``load_tiny(DIR / "tiny")``) with a training record.
The same code runs on CPU and CUDA (``--device cuda``).
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
from .plan import Plan, Step, make_plan
from .runtime import resolve_device, save_safetensors
from .sampler import time_shift
from .schedule import PRESETS, Schedule
from .train_state import load_state, save_state

DEFAULT_CONFIG = Path(__file__).resolve().parent / "assets" / "tiny_train.json"

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


def load_config(path: str | Path) -> dict:
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"training config {path} not found; the shipped one is {DEFAULT_CONFIG}")
    return json.loads(path.read_text())


def _seed_all(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def _world_frames(rng: np.random.Generator, n: int, size: int = world.SIZE) -> torch.Tensor:
    """``n`` random training-world frames ``(n, 3, size, size)``."""
    seeds = rng.integers(world.TRAIN_SEEDS.start, world.TRAIN_SEEDS.stop, size=n)
    times = rng.integers(0, WORLD_TIMES, size=n)
    frames = np.stack([world.render(world.make_world(int(s), size), [int(t)])[0] for s, t in zip(seeds, times)])
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
        x = _world_frames(rng, ac["batch"], mc.frame_size).to(device)
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
    heldout = held_out_psnr(ae, device, frame_size=mc.frame_size)
    log({"stage": "ae", "done": True, "seconds": seconds, "heldout_psnr": heldout})
    return ae, {"steps": steps, "seconds": round(seconds, 1), "heldout_psnr_db": round(heldout, 2)}


@torch.no_grad()
def held_out_psnr(ae: TinyAutoencoder, device, n_videos: int = 16, n_frames: int = 8,
                  frame_size: int = world.SIZE) -> float:
    """Reconstruction PSNR (dB) on ``frame_size`` x ``frame_size`` frames of held-out worlds."""
    seeds = list(world.HELDOUT_SEEDS)[:n_videos]
    x = world.batch(seeds, n_frames, size=frame_size).reshape(-1, 3, frame_size, frame_size).to(device)
    return psnr(ae.decode_images(ae.encode_images(x)), x)


@torch.no_grad()
def build_latent_bank(ae: TinyAutoencoder, cfg: dict, device, progress: bool = True,
                      occluded: bool = False) -> torch.Tensor:
    """Encode training videos once: ``(N, C, F, h, w)`` float16 (``16 x 16`` latents of 64 x 64
    frames), normalised. The plain bank (``data.videos`` worlds) sets the autoencoder's latent
    statistics; ``occluded=True`` builds the bank of ``data.occluded_videos`` worlds with an
    occluder band (other seeds), normalised with those statistics."""
    from tqdm.auto import tqdm

    dc = cfg["data"]
    size = TinyConfig.from_dict(cfg["model"]).frame_size
    rng = np.random.default_rng(cfg["seed"] + (3 if occluded else 1))
    seeds = rng.choice(world.TRAIN_SEEDS.stop, size=dc["occluded_videos" if occluded else "videos"], replace=False)
    chunks = []
    for s in tqdm(seeds, desc="occluded bank" if occluded else "latent bank", disable=not progress):
        frames = torch.from_numpy(world.video(int(s), dc["frames"], start=int(rng.integers(0, 300)), size=size,
                                              occluded=occluded))
        z = ae.encode_images(frames.permute(0, 3, 1, 2).to(device))  # (F, C, h, w)
        chunks.append(z.permute(1, 0, 2, 3).half().cpu())
    bank = torch.stack(chunks)  # (N, C, F, h, w)
    if occluded:
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
    """
    order, key = _pick(rng, TRAIN_MIX)
    sched = PRESETS[key].schedule
    S = _pick(rng, SECTION_LENGTHS)
    tail = sched.tail
    if tail is not None and rng.random() < 0.3:
        tail = rng.choice(["ta", "tc"])
    sched = dataclasses.replace(sched, generated=S, tail=tail)
    n_frames = rng.randint(S + 1, max_frames - S)
    plan = make_plan(order, n_frames, sched)
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
    x0 = video[:, :, list(step.generated)]
    level = 0.0
    if model.config.history_noise:  # Diffusion Forcing: noise the history, tell the model how much
        noisy = (torch.rand(B, generator=gen) < dc["history_noise_prob"]).float()
        level = noisy * torch.rand(B, generator=gen) * dc["history_noise_max"]
    codebook = None
    if codebooks and dc.get("discrete_prob", 0.0) > 0 and rng.random() < dc["discrete_prob"]:  # '+D': snap the history to a codebook
        codebook = codebooks[rng.choice(dc["discrete_train_ks"])].to(device)
    context = pack(video, step, model.kernels, history_noise=level, generator=gen, codebook=codebook)
    if rng.random() < dc.get("history_dropout", 0.0):  # no history at all: for history guidance
        context = dataclasses.replace(context, groups=[], history_noise=0.0)
    u = torch.rand(B, generator=gen)
    sigma = time_shift(u, dc["train_shift"]).to(device)  # shift u / (1 + (shift - 1) u), toward noise
    eps = torch.randn(x0.shape, generator=gen).to(device)
    s = sigma.view(-1, 1, 1, 1, 1)
    x_t = (1 - s) * x0 + s * eps
    pred = model(x_t, sigma, context)
    weight = 1.0 / (s**2 + 0.1)
    beta = dc.get("motion_weight", 0.0)
    if beta:
        weight = weight * (1 + beta * motion_map(x0))
    return (weight * (pred - x0) ** 2).mean()


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


def train(cfg: dict, out: str | Path, device: str = "cpu", resume: bool = False, steps: int | None = None,
          progress: bool = True) -> Path:
    """Run both stages; returns the exported checkpoint folder ``out/tiny``."""
    from tqdm.auto import tqdm

    device = resolve_device(device)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    _seed_all(cfg["seed"])
    logf = open(out / "log.jsonl", "a")

    def log(d):
        logf.write(json.dumps(d) + "\n")
        logf.flush()

    dc = dict(cfg["dit"])
    if steps is not None:
        dc["steps"] = steps
    mc = TinyConfig.from_dict(cfg["model"])

    # stage 1: autoencoder (reused when resuming)
    ae_file = out / "autoencoder.safetensors"
    from safetensors.torch import load_file
    if resume and ae_file.exists():
        ae = TinyAutoencoder(mc.latent_channels, mc.ae_width).to(device)
        ae.load_state_dict(load_file(str(ae_file)))
        ae_record = json.loads((out / "autoencoder.json").read_text())
    else:
        ae, ae_record = train_autoencoder(cfg, device, log, progress)
    ae.eval()
    for p in ae.parameters():
        p.requires_grad_(False)
    bank_file = out / "latent_bank.safetensors"
    if resume and bank_file.exists() and ae_file.exists():  # the bank of this autoencoder, encoded once
        bank = load_file(str(bank_file))["bank"]
    else:
        t_bank = time.time()
        bank = build_latent_bank(ae, cfg, device, progress)  # also sets the latent statistics
        ae_record["bank_seconds"] = round(time.time() - t_bank, 1)
        save_safetensors({k: v.contiguous() for k, v in ae.state_dict().items()}, ae_file)
        (out / "autoencoder.json").write_text(json.dumps(ae_record))
        save_safetensors({"bank": bank.contiguous()}, bank_file)
    occluded_bank = _cached_bank(out / "latent_bank_occluded.safetensors", resume and ae_file.exists(),
                                 lambda: build_latent_bank(ae, cfg, device, progress, occluded=True)
                                 ) if cfg["data"].get("occluded_videos") else None
    codebooks = _cached_codebooks(out / "codebooks.safetensors", resume and ae_file.exists(), bank,
                                  cfg["data"].get("codebook_ks", ()), cfg["seed"])

    # stage 2: DiT (seeded on its own, so a run resumed after stage 1 matches an uninterrupted one)
    torch.manual_seed(cfg["seed"] + 2)
    model = TinyFramePack(mc).to(device)
    ema = TinyFramePack(mc).to(device)
    ema.load_state_dict(model.state_dict())
    ema.requires_grad_(False)
    opt = torch.optim.AdamW(model.parameters(), lr=dc["lr"], weight_decay=dc["weight_decay"], betas=(0.9, 0.99))
    start, record = 0, {"dit_seconds": 0.0, "losses": []}
    if resume and (out / "state.safetensors").exists():
        start, record = load_state(out, model, ema, opt)
    rng = random.Random(cfg["seed"] + start)
    gen = torch.Generator().manual_seed(cfg["seed"] + start)
    n_params = sum(p.numel() for p in model.parameters())
    log({"stage": "dit", "params": n_params, "start": start})

    def export(step):
        rec = {"training_record": {
            "steps": step, "batch": dc["batch"], "dit_seconds": round(record["dit_seconds"], 1),
            "dit_params": n_params, "final_loss_ema": record["losses"][-1] if record["losses"] else None,
            "autoencoder": ae_record, "device": str(device), "torch": torch.__version__,
            "hardware": (torch.cuda.get_device_name(device) if device.type == "cuda"
                         else f"{platform.machine()} {os.cpu_count()} cores"),
            "threads": torch.get_num_threads(), "config": cfg}}
        save_tiny(out / "tiny", ema, ae, rec, codebooks)

    loss_avg, t_last = None, time.time()
    bar = tqdm(range(start, dc["steps"]), desc="dit", disable=not progress, initial=start, total=dc["steps"])
    step = start
    try:
        for step in bar:
            for g in opt.param_groups:
                g["lr"] = warmup_cosine(step, dc["lr"], dc["warmup"], dc["steps"])
            sc = phase_settings(dc, step)
            task = sample_task(rng, bank.shape[2], sc)
            p_occ = sc.get("occluded_prob", 0.0) if occluded_bank is not None else 0.0
            source = occluded_bank if p_occ > 0 and rng.random() < p_occ else bank  # forgetting: hidden sprites
            loss = training_loss(model, source, task, sc, gen, rng, device, codebooks)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            with torch.no_grad():
                decay = min(dc["ema"], (1 + step) / (10 + step))
                for pe, pm in zip(ema.parameters(), model.parameters()):
                    pe.lerp_(pm, 1 - decay)
            loss_avg = loss.item() if loss_avg is None else 0.98 * loss_avg + 0.02 * loss.item()
            now = time.time()
            record["dit_seconds"] += now - t_last
            t_last = now
            bar.set_postfix(loss=f"{loss_avg:.4f}")
            if step % 25 == 0:
                log({"stage": "dit", "step": step, "loss": loss.item(), "loss_ema": loss_avg, "order": task.order,
                     "schedule": task.schedule.name, "seconds": round(record["dit_seconds"], 1)})
            if (step + 1) % cfg["checkpoint_every"] == 0:
                record["losses"].append(round(loss_avg, 5))
                save_state(out, model, ema, opt, step + 1, record)
                export(step + 1)
        step = dc["steps"]
    finally:
        if loss_avg is not None:
            record["losses"].append(round(loss_avg, 5))
        save_state(out, model, ema, opt, step, record)
        export(step)
        logf.close()
    return out / "tiny"


def _cached_bank(path: Path, reuse: bool, build) -> torch.Tensor:
    """The bank in ``path`` when ``reuse`` and it exists, else ``build()`` saved there."""
    from safetensors.torch import load_file

    if reuse and path.exists():
        return load_file(str(path))["bank"]
    bank = build()
    save_safetensors({"bank": bank.contiguous()}, path)
    return bank


def _cached_codebooks(path: Path, reuse: bool, bank: torch.Tensor, ks, seed: int) -> dict[int, torch.Tensor]:
    """Discrete-history codebooks ``{K: (K, C)}`` fitted on the latent bank (``data.codebook_ks``),
    kept in ``path`` so a resumed run uses the same ones; empty when no ``K`` is configured."""
    from safetensors.torch import load_file

    from .discrete import fit_codebooks

    if not ks:
        return {}
    if reuse and path.exists():
        books = {int(k): v for k, v in load_file(str(path)).items()}
        if sorted(books) == sorted(int(k) for k in ks):
            return books
    books = fit_codebooks(bank, ks, seed=seed)
    save_safetensors({str(k): v.contiguous() for k, v in books.items()}, path)
    return books


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", default=str(DEFAULT_CONFIG), help="training config JSON (default: the shipped one)")
    p.add_argument("--out", default="runs/tiny", help="output folder (checkpoints, log.jsonl, tiny/)")
    p.add_argument("--device", default="cpu", help="cpu, cuda, mps, ... or auto (CUDA when available, else CPU)")
    p.add_argument("--steps", type=int, default=None, help="override the DiT steps of the config")
    p.add_argument("--resume", action="store_true", help="continue from OUT/state.safetensors")
    p.add_argument("--no-progress", action="store_true")
    a = p.parse_args(argv)
    path = train(load_config(a.config), a.out, a.device, a.resume, a.steps, not a.no_progress)
    print(f"exported {path}")


if __name__ == "__main__":
    main()
