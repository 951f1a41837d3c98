"""The live filmstrip: the frames a filmstrip samples, decoded once each as the sections land.

Decoding the whole video after every section (what :meth:`~framepack_lab.generate.SectionEvent.preview`
does) made a panel run 2-3x slower than the same ``generate`` call (16 sections x 64 frames
decoded for a 64-frame video). :class:`LiveFilmstrip` decodes each sampled latent frame once, when
it becomes known, and draws the strip from those. Needs numpy and torch; no widgets.
"""

from __future__ import annotations

from typing import Callable, Iterable

import numpy as np
import torch

from .common import FILMSTRIP_COLUMNS, FILMSTRIP_EVERY, filmstrip, filmstrip_caption


class LiveFilmstrip:
    """One image per sampled latent frame (every ``every``-th of ``n_frames``), grey until known.

    Each sampled latent frame is decoded alone, as a one-frame video, the moment it is known: for
    the tiny model (a per-frame autoencoder) that is exactly the frame of the finished video; for a
    causal video VAE (HunyuanVideo) a close preview of the frames that latent becomes.

    Args:
        decode: the backend's ``decode``, latents ``(B, C, T, h, w)`` -> frames ``(B, T', H, W, 3)``.
        n_frames: latent frames of the video.
        every, columns: the filmstrip's sampling and row length.
        fill: grey level of frames not generated yet.
    """

    def __init__(self, decode: Callable[[torch.Tensor], torch.Tensor], n_frames: int,
                 every: int = FILMSTRIP_EVERY, columns: int = FILMSTRIP_COLUMNS, fill: float = 0.5):
        self.decode, self.n_frames, self.every, self.columns, self.fill = decode, n_frames, every, columns, fill
        self.sampled = list(range(0, n_frames, every))
        self.images: dict[int, np.ndarray] = {}

    @property
    def caption(self) -> str:
        return filmstrip_caption(self.n_frames, self.every, self.columns, what="latent frame")

    def update(self, latents: torch.Tensor, known: Iterable[int]) -> bool:
        """Decode the sampled frames of ``latents (B, C, T, h, w)`` (first video of the batch) that
        are ``known`` and not decoded yet; returns whether any were."""
        new = [f for f in self.sampled if f in set(known) and f not in self.images]
        if not new:
            return False
        one_frame_videos = latents[0, :, new].transpose(0, 1)[:, :, None]  # (n, C, 1, h, w)
        frames = self.decode(one_frame_videos)[:, -1].detach().float().cpu().numpy()  # (n, H, W, 3)
        self.images.update(zip(new, frames))
        return True

    def image(self) -> np.ndarray:
        """The filmstrip ``(rows*H, columns*W, 3)``; frames not known yet are flat ``fill``."""
        if not self.images:
            raise ValueError("no frame decoded yet: call update() with the latents of a finished section first")
        blank = np.full_like(next(iter(self.images.values())), self.fill)
        return filmstrip(np.stack([self.images.get(f, blank) for f in self.sampled]), every=1, columns=self.columns)
