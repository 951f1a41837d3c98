"""Frames and images, model-neutral: the checks and mappings both backends and the runner share.

No model, no mediapy: :mod:`framepack_lab.generate` and the backends import from here.
"""

from __future__ import annotations

import numpy as np
import torch


def as_image(image, name: str = "first_frame") -> torch.Tensor:
    """An ``(H, W, 3)`` uint8 image or float image in [0, 1] (numpy or torch) -> ``(H, W, 3)``
    float32 in [0, 1]; ``ValueError`` naming ``name`` for anything else."""
    x = torch.as_tensor(np.asarray(image))
    if x.ndim != 3 or x.shape[-1] != 3:
        raise ValueError(f"{name} must be an (H, W, 3) RGB image, got shape {tuple(x.shape)}")
    x = x.float() / 255.0 if x.dtype == torch.uint8 else x.float()
    if x.min() < -1e-3 or x.max() > 1 + 1e-3:
        raise ValueError(f"{name} values must be uint8 or floats in [0, 1]")
    return x.clamp(0, 1)


def decoded_mask(n_decoded: int, n_latent: int, known) -> np.ndarray:
    """Which of ``n_decoded`` decoded frames come from the ``known`` latent frames ``(n_decoded,)``.

    One frame per latent frame (the tiny model), or a causal video VAE's ``1 + r (T - 1)`` frames:
    latent 0 gives frame 0, latent ``k >= 1`` frames ``1 + r (k - 1) .. r k`` (HunyuanVideo, r = 4).
    """
    known = [k for k in known if k < n_latent]
    mask = np.zeros(n_decoded, dtype=bool)
    if n_decoded == n_latent:
        mask[known] = True
        return mask
    r = (n_decoded - 1) // max(n_latent - 1, 1)
    if n_latent < 2 or n_decoded != 1 + r * (n_latent - 1):
        raise ValueError(f"cannot map {n_decoded} decoded frames onto {n_latent} latent frames")
    for k in known:
        mask[0 if k == 0 else slice(1 + r * (k - 1), 1 + r * k)] = True
    return mask
