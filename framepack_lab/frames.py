"""Frames and images, model-neutral: the checks and mappings both backends and the runner share.

No model, no mediapy: :mod:`framepack_lab.generate` and the backends import from here.
"""

from __future__ import annotations

import numpy as np
import torch


def as_image(image, name: str = "first_frame") -> torch.Tensor:
    """An ``(H, W, 3)`` uint8 image or float image in [0, 1] (numpy or torch) -> ``(H, W, 3)``
    float32 in [0, 1]; ``ValueError`` naming ``name`` for anything else (a wrong shape, values out
    of range, NaN or infinity, a non-numeric array)."""
    try:
        array = np.asarray(image.detach().cpu() if isinstance(image, torch.Tensor) else image)
        x = torch.as_tensor(array)
    except (TypeError, ValueError, RuntimeError):
        raise ValueError(f"{name} must be an (H, W, 3) RGB image as a numpy array or torch tensor of numbers, "
                         f"got {type(image).__name__}; give uint8 values or floats in [0, 1]") from None
    if x.ndim != 3 or x.shape[-1] != 3 or x.numel() == 0:
        raise ValueError(f"{name} must be an (H, W, 3) RGB image, got shape {tuple(x.shape)}; give one "
                         "non-empty frame, e.g. framepack_lab.world.video(seed, 1)[0] of shape (64, 64, 3)")
    if x.dtype == torch.bool or x.is_complex():
        raise ValueError(f"{name} must hold uint8 or float values, got {x.dtype}; give uint8 values or floats "
                         "in [0, 1]")
    x = x.float() / 255.0 if x.dtype == torch.uint8 else x.float()
    bad = int((~torch.isfinite(x)).sum())
    if bad:
        raise ValueError(f"{name} has {bad} NaN or infinite value(s) of {x.numel()}; give a finite image "
                         "(e.g. np.nan_to_num(image), or check what produced it)")
    if x.min() < -1e-3 or x.max() > 1 + 1e-3:
        raise ValueError(f"{name} values must be uint8 or floats in [0, 1], got floats in "
                         f"[{float(x.min()):.3g}, {float(x.max()):.3g}] (divide 0..255 floats by 255)")
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
