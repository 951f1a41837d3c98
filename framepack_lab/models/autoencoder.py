"""A small convolutional autoencoder: the tiny model's latent space (like the paper's VAE).

64x64x3 frames become 16x16x4 latents (4x spatial downsampling, no temporal compression), so
the base kernel (1, 2, 2) gives 64 tokens per frame, k2 16 per 2 frames, k4 4 per 4 frames and
k8 1 per 8 frames: the whole kernel ladder, and the tail problem, are real at this size.
Latents are normalised per channel to about zero mean and unit variance.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F


class _Res(nn.Module):
    def __init__(self, ch: int):
        super().__init__()
        self.a = nn.Conv2d(ch, ch, 3, padding=1)
        self.b = nn.Conv2d(ch, ch, 3, padding=1)

    def forward(self, x):
        return x + self.b(F.silu(self.a(F.silu(x))))


class TinyAutoencoder(nn.Module):
    """Frames ``(N, 3, H, W)`` in [0, 1] <-> latents ``(N, C, H/4, W/4)``.

    Use :meth:`encode` / :meth:`decode` for videos ``(B, T, H, W, 3)`` <-> ``(B, C, T, h, w)``.
    """

    factor = 4

    def __init__(self, latent_channels: int = 4, width: int = 32):
        super().__init__()
        w = width
        self.encoder = nn.Sequential(
            nn.Conv2d(3, w, 3, padding=1), nn.SiLU(),
            nn.Conv2d(w, 2 * w, 4, stride=2, padding=1), _Res(2 * w),          # 32x32
            nn.Conv2d(2 * w, 3 * w, 4, stride=2, padding=1), _Res(3 * w),      # 16x16
            nn.SiLU(), nn.Conv2d(3 * w, latent_channels, 3, padding=1),
        )
        self.decoder = nn.Sequential(
            nn.Conv2d(latent_channels, 3 * w, 3, padding=1), _Res(3 * w), _Res(3 * w),
            nn.Upsample(scale_factor=2, mode="nearest"), nn.Conv2d(3 * w, 2 * w, 3, padding=1), _Res(2 * w),
            nn.Upsample(scale_factor=2, mode="nearest"), nn.Conv2d(2 * w, w, 3, padding=1),
            nn.SiLU(), nn.Conv2d(w, 3, 3, padding=1),
        )
        self.register_buffer("latent_mean", torch.zeros(latent_channels))
        self.register_buffer("latent_std", torch.ones(latent_channels))

    # raw (unnormalised) image <-> latent maps, used in training
    def encode_images(self, images: torch.Tensor) -> torch.Tensor:
        """``(N, 3, H, W)`` in [0, 1] -> raw latents ``(N, C, H/4, W/4)``."""
        return self.encoder(images * 2 - 1)

    def decode_images(self, z: torch.Tensor) -> torch.Tensor:
        """Raw latents ``(N, C, h, w)`` -> images ``(N, 3, 4h, 4w)`` (unclamped, about [0, 1])."""
        return (self.decoder(z) + 1) / 2

    def _norm(self, z):
        return (z - self.latent_mean[:, None, None]) / self.latent_std[:, None, None]

    def _denorm(self, z):
        return z * self.latent_std[:, None, None] + self.latent_mean[:, None, None]

    @torch.no_grad()
    def encode(self, frames: torch.Tensor) -> torch.Tensor:
        """Video frames ``(B, T, H, W, 3)`` in [0, 1] -> normalised latents ``(B, C, T, H/4, W/4)``."""
        B, T, H, W, _ = frames.shape
        z = self._norm(self.encode_images(frames.reshape(B * T, H, W, 3).permute(0, 3, 1, 2)))
        return z.reshape(B, T, *z.shape[1:]).permute(0, 2, 1, 3, 4).contiguous()

    @torch.no_grad()
    def decode(self, latents: torch.Tensor) -> torch.Tensor:
        """Normalised latents ``(B, C, T, h, w)`` -> frames ``(B, T, 4h, 4w, 3)`` in [0, 1]."""
        B, C, T, h, w = latents.shape
        z = latents.permute(0, 2, 1, 3, 4).reshape(B * T, C, h, w)
        x = self.decode_images(self._denorm(z)).clamp(0, 1)
        return x.reshape(B, T, 3, *x.shape[-2:]).permute(0, 1, 3, 4, 2).contiguous()
