"""The Train / Stop panel: train a tiny FramePack from a notebook and watch it learn.

A :class:`~framepack_lab.train.Trainer` steps on a worker thread (a click in JupyterLab) or in
:meth:`TrainPanel.run` (headless, blocking). The panel shows the device and elapsed time, a live
loss curve, and every ``sample_every`` steps a filmstrip of short videos from held-out worlds
generated with the current EMA weights through :func:`~framepack_lab.generate.generate` (the code
path every other panel uses). Stop ends training between steps and leaves a resumable checkpoint
(``TrainPanel(..., resume=True)`` or ``python -m framepack_lab.train --resume`` continues it);
:meth:`TrainPanel.backend` loads the exported model for :class:`~.GeneratePanel`. Imports
ipywidgets when a panel is made, matplotlib when it draws.
"""

from __future__ import annotations

import html
import threading
import time
from pathlib import Path

import numpy as np
import torch

from .. import world
from ..generate import DEFAULT_ORDER, generate
from ..plan import ORDERS
from ..train import Trainer, load_preset, time_budget
from .common import ClickRunner, error_html, figure_png, filmstrip, png_bytes

SAMPLE_WORLDS_RANGE = (1, 8)  # held-out worlds in the filmstrip (one row each)
SAMPLE_STRIDE = 2  # the filmstrip shows every 2nd frame of each sample video


def _png_tag(png: bytes, alt: str) -> str:
    import base64

    return f"<img alt='{alt}' src='data:image/png;base64,{base64.b64encode(png).decode()}'/>" if png else ""


def _positive_int(name: str, value, lo: int = 1, hi: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < lo or (hi is not None and value > hi):
        span = f"from {lo} to {hi}" if hi is not None else f">= {lo}"
        raise ValueError(f"{name} must be a whole number {span}, got {value!r}")
    return int(value)


class TrainPanel(ClickRunner):
    """A Train / Stop panel over a :class:`~framepack_lab.train.Trainer`.

    Args:
        config: a preset name (``"smoke"``, ``"cpu_hour"``, ``"gpu_minutes"``;
            :func:`~framepack_lab.train.load_preset`) or a training config dict.
        out: output folder (checkpoints, ``log.jsonl``, the export ``out/tiny``).
        device: ``"cpu"``, ``"cuda"``, ``"auto"``, ...; refused before any work when absent.
        resume: continue from the checkpoint in ``out``.
        steps: override the config's DiT steps.
        sample_every: DiT steps between filmstrips (one is also drawn when training ends).
        sample_worlds: held-out worlds sampled (one filmstrip row each), 1..8.
        sample_frames: latent frames of each sample video (at least 5).
        sample_steps: sampler steps per section of the samples.
        sample_order: sampling order of the samples.
        background: run clicks on a worker thread (True in JupyterLab; tests pass False).
        max_minutes: stop each Train click after this many minutes (stage 1 included), leaving a
            resumable checkpoint as Stop does; ``None``: train to the config's steps.

    Attributes after a run: ``losses`` (``[(step, loss, loss_ema)]``, one per DiT step run here),
    ``samples`` (``[(step, image (H, W, 3))]``), ``trainer``, ``error`` (bad input's message).
    """

    CURVE_REDRAW_S = 1.0  # the loss curve is redrawn at most this often (and when training ends)
    STRIP_SCALE = 2

    def __init__(self, config: dict | str = "smoke", out: str | Path = "runs/notebook", device: str = "cpu",
                 resume: bool = False, steps: int | None = None, sample_every: int = 200, sample_worlds: int = 3,
                 sample_frames: int = 17, sample_steps: int = 8, sample_order: str = DEFAULT_ORDER,
                 background: bool = True, max_minutes: float | None = None):
        import ipywidgets as w

        time_budget(max_minutes)  # refuses a bad budget before any work
        self.max_minutes = max_minutes

        cfg = load_preset(config) if isinstance(config, str) else config
        if not isinstance(cfg, dict):
            raise ValueError(f"config must be a preset name or a training config dict, got {type(config).__name__}")
        self.sample_every = _positive_int("sample_every", sample_every)
        self.sample_worlds = _positive_int("sample_worlds", sample_worlds, *SAMPLE_WORLDS_RANGE)
        self.sample_frames = _positive_int("sample_frames", sample_frames, lo=5)
        self.sample_steps = _positive_int("sample_steps", sample_steps)
        if sample_order not in ORDERS:
            raise ValueError(f"unknown sampling order {sample_order!r}; choose one of {', '.join(ORDERS)}")
        self.sample_order, self.background = sample_order, background
        self.trainer = Trainer(cfg, out, device, resume=resume, steps=steps, progress=False,
                               on_step=self._on_step, on_checkpoint=self._on_checkpoint)
        self.losses: list[tuple[int, float, float]] = []
        self.samples: list[tuple[int, np.ndarray]] = []
        self.checkpoints: list[int] = []
        self.error: str | None = None
        self.elapsed = 0.0
        self._t0, self._last_curve = 0.0, -np.inf
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

        self.train_button = w.Button(description="Train", button_style="primary", icon="play")
        self.stop_button = w.Button(description="Stop", button_style="warning", icon="stop", disabled=True)
        self.progress = w.IntProgress(value=0, min=0, max=max(1, self.trainer.total_steps), description="DiT steps")
        self.status = w.HTML(value=f"ready: {self.trainer.total_steps} DiT steps on {self.device_text}")
        self.curve = w.Image(format="png", layout=w.Layout(object_fit="contain", max_width="45%"))
        self.strip = w.Image(format="png", layout=w.Layout(object_fit="contain", max_width="55%"))
        self.strip_caption = w.HTML(value="")
        self.train_button.on_click(lambda _: self._clicked())
        self.stop_button.on_click(lambda _: self._stop.set())
        self.widget = w.VBox([
            w.HBox([self.train_button, self.stop_button, self.progress, self.status]),
            w.HBox([self.curve, w.VBox([self.strip, self.strip_caption])]),
        ])

    # ------------------------------------------------------------------------- display
    @property
    def device_text(self) -> str:
        dev = self.trainer.device
        if dev.type == "cuda":
            return f"{dev} ({torch.cuda.get_device_name(dev)})"
        n = torch.get_num_threads()
        return f"{dev} ({n} thread{'s' if n > 1 else ''})"

    def _ipython_display_(self):
        from IPython.display import display

        display(self.widget)

    def snapshot(self):
        """A static copy for saved or headless notebooks (widget state is not stored): the status
        line (device and elapsed time), the loss curve, and the filmstrips drawn so far."""
        from IPython.display import HTML

        if not self.losses:
            return HTML(f"<p>{html.escape(self.error or 'not trained yet')}</p>")
        strips = "".join(f"<figure style='margin:0'>{_png_tag(png_bytes(img, scale=1), 'samples')}"
                         f"<figcaption><small>{html.escape(self._caption(step))}</small></figcaption></figure>"
                         for step, img in self.samples)
        return HTML(f"<p><b>training</b>: {self.status.value}</p>"
                    "<div style='display:flex; gap:1em; align-items:flex-start; flex-wrap:wrap'>"
                    f"{_png_tag(self.curve.value, 'loss curve')}<div>{strips}</div></div>")

    def _caption(self, step: int) -> str:
        return (f"step {step}: {self.sample_worlds} held-out worlds (rows), every {SAMPLE_STRIDE}nd of "
                f"{self.sample_frames} frames, {self.sample_order}, EMA weights")

    # ------------------------------------------------------------------------- actions
    def _show_error(self, message: str) -> None:
        self.error = message
        self.status.value = error_html(message)

    def start(self) -> None:
        """What the Train button does: train on a worker thread when ``background`` (Stop stays
        clickable while no other cell runs; :meth:`wait` for the end), else block like :meth:`run`."""
        self._clicked()

    def stop(self) -> None:
        """Ask a running training to stop after the current step (what the Stop button does)."""
        self._stop.set()

    def wait(self, timeout: float | None = None) -> None:
        """Block until a background run has finished."""
        if self._thread is not None:
            self._thread.join(timeout)

    def run(self) -> Path | None:
        """Train (blocking) until the config's steps are done or Stop is pressed; the checkpoint
        and the export are written either way. Returns the export folder ``out/tiny``, or None
        when the run was refused (the message is in the panel and ``self.error``)."""
        t = self.trainer
        self._stop.clear()
        self.error = None
        if t.done and t.ready:
            self._show_error(f"training already reached its {t.total_steps} DiT steps; make a new panel with "
                             "resume=True and a larger `steps` to go on")
            return None
        self.train_button.disabled, self.stop_button.disabled = True, False
        self._t0 = time.perf_counter() - self.elapsed
        out_of_time = time_budget(self.max_minutes)
        try:
            if not t.ready:
                self.status.value = f"stage 1: autoencoder and latent bank on {self.device_text} ..."
                t.setup()
                self.progress.value = t.step_count
            path = t.run(stop=lambda: self._stop.is_set() or out_of_time())
        finally:
            self.train_button.disabled, self.stop_button.disabled = False, True
            self.elapsed = time.perf_counter() - self._t0
        self._draw_curve()
        if not self.samples or self.samples[-1][0] != t.step_count:
            self._sample()
        loss = f"; loss (running mean) {t.loss_avg:.4f}" if t.loss_avg is not None else ""
        resume = " (resume=True continues it)" if t.stopped else ""
        if t.stopped and not self._stop.is_set():
            resume = f" (the {self.max_minutes:g}-minute budget; resume=True continues it)"
        self.status.value = (f"{'stopped at' if t.stopped else 'done:'} step {t.step_count}/{t.total_steps} in "
                             f"{self.elapsed:.1f} s on {self.device_text}{loss}; checkpoint in {t.out}{resume}")
        return path

    def backend(self, device: str | None = None):
        """The exported model (``out/tiny``) loaded as a backend for :class:`~.GeneratePanel`
        (on the training device unless ``device`` is given). ``ValueError`` before any training."""
        from ..models.tiny import load_tiny

        path = self.trainer.out / "tiny"
        if not (path / "model.safetensors").exists():
            raise ValueError(f"no trained model in {path} yet: press Train (or call run()) first")
        return load_tiny(path, device=device or self.trainer.device)

    # ------------------------------------------------------------------------- hooks
    def _on_step(self, info: dict) -> None:
        """After each DiT step (on the training thread): progress, status, curve, samples."""
        self.losses.append((info["step"], info["loss"], info["loss_ema"]))
        self.progress.value = info["step"]
        self.elapsed = time.perf_counter() - self._t0
        self.status.value = (f"step {info['step']}/{self.trainer.total_steps}: loss {info['loss']:.4f} "
                             f"(EMA {info['loss_ema']:.4f}), {self.elapsed:.1f} s on {self.device_text}")
        now = time.perf_counter()
        if now - self._last_curve >= self.CURVE_REDRAW_S:
            self._draw_curve()
        if info["step"] % self.sample_every == 0:
            self._sample()

    def _on_checkpoint(self, step: int) -> None:
        self.checkpoints.append(step)

    def _draw_curve(self) -> None:
        import matplotlib.pyplot as plt

        if not self.losses:
            return
        steps, loss, ema = (np.array(c) for c in zip(*self.losses))
        fig, ax = plt.subplots(figsize=(4.5, 2.8))
        ax.plot(steps, loss, lw=0.6, alpha=0.4, label="batch loss")
        ax.plot(steps, ema, lw=1.6, label="running mean (0.98)")
        ax.set_yscale("log")
        ax.set_xlabel("DiT step")
        ax.set_ylabel("weighted x0 loss")
        ax.legend(fontsize=7)
        ax.set_title(f"loss, step {int(steps[-1])}", fontsize=9)
        self.curve.value = figure_png(fig)
        self._last_curve = time.perf_counter()

    @torch.no_grad()
    def sample_videos(self) -> list[np.ndarray]:
        """Short videos ``[(T, H, W, 3)]`` from the first frames of held-out worlds, generated
        with the current EMA weights (:meth:`~framepack_lab.train.Trainer.backend`)."""
        be = self.trainer.backend()
        size = self.trainer.mc.frame_size
        seeds = list(world.HELDOUT_SEEDS)[:self.sample_worlds]
        return [generate(be, world.video(s, 1, size=size, trail=be.trail)[0], n_frames=self.sample_frames,
                         steps=self.sample_steps, order=self.sample_order, seed=0).frames for s in seeds]

    def _sample(self) -> None:
        rows = [filmstrip(v, every=SAMPLE_STRIDE, columns=self.sample_frames) for v in self.sample_videos()]
        image = np.concatenate(rows, axis=0)
        step = self.trainer.step_count
        self.samples.append((step, image))
        self.strip.value = png_bytes(image, scale=self.STRIP_SCALE)
        self.strip_caption.value = f"<small>{html.escape(self._caption(step))}</small>"


__all__ = ["TrainPanel"]
