"""Discrete history (``+D``, the paper's NeurIPS version): snap history latents to a codebook.

A K-means codebook is fitted over latent *pixels* (one ``C``-vector per latent position) of
training worlds. Before packing, every history latent pixel is replaced by its nearest centroid,
so small errors in generated history snap back onto values the training data really has. The
trade-off the paper describes: ``K = 1`` turns every history frame into one flat colour (no drift
left, and no memory either); a very large ``K`` changes nothing (a no-op).

The shipped checkpoint carries one codebook per ``K`` in :data:`CODEBOOK_KS` (keys
``codebook.K`` of its ``model.safetensors``); a schedule name ending in ``+D`` uses
:data:`DEFAULT_K`, ``+D64`` asks for ``K = 64``.
"""

from __future__ import annotations

import torch

DEFAULT_K = 256  # the paper reports K = 256 (and suggests 128)
CODEBOOK_KS = (1, 4, 16, 64, 256, 1024)  # codebooks fitted and shipped with the checkpoint
FIT_PIXELS = 200_000  # latent pixels sampled from the training bank to fit a codebook
FIT_ITERS = 25


def kmeans(pixels: torch.Tensor, k: int, iters: int = FIT_ITERS, seed: int = 0) -> torch.Tensor:
    """Lloyd's K-means with k-means++ seeding.

    Args:
        pixels: ``(N, C)`` float vectors, ``N >= k``.
        k: number of centroids.
        iters: Lloyd iterations.
        seed: seeds the k-means++ draws.

    Returns:
        Centroids ``(k, C)`` float32, sorted by cluster size (largest first).
    """
    if not isinstance(k, int) or isinstance(k, bool) or k < 1:
        raise ValueError(f"K must be a positive integer, got {k!r}")
    x = pixels.float()
    if x.ndim != 2 or x.shape[0] < k:
        raise ValueError(f"need (N, C) pixels with N >= K={k}, got {tuple(x.shape)}")
    g = torch.Generator().manual_seed(seed)
    centroids = x[torch.randint(0, len(x), (1,), generator=g)]
    d2 = torch.cdist(x, centroids).squeeze(1) ** 2
    for _ in range(1, k):  # k-means++: draw the next centroid with probability ~ squared distance
        nxt = x[torch.multinomial(d2 / d2.sum().clamp_min(1e-12), 1, generator=g)]
        centroids = torch.cat([centroids, nxt])
        d2 = torch.minimum(d2, ((x - nxt) ** 2).sum(1))
    for _ in range(iters):
        assign = nearest(x, centroids)
        counts = torch.bincount(assign, minlength=k).float()
        sums = torch.zeros_like(centroids).index_add_(0, assign, x)
        keep = counts > 0  # an empty cluster keeps its old centroid
        centroids[keep] = sums[keep] / counts[keep, None]
    counts = torch.bincount(nearest(x, centroids), minlength=k)
    return centroids[counts.argsort(descending=True)].contiguous()


def nearest(pixels: torch.Tensor, codebook: torch.Tensor, chunk: int = 65536) -> torch.Tensor:
    """Index of the nearest centroid for each pixel: ``(N, C), (K, C) -> (N,)`` long."""
    out = [torch.cdist(pixels[i:i + chunk].float(), codebook.float()).argmin(1) for i in range(0, len(pixels), chunk)]
    return torch.cat(out) if out else torch.zeros(0, dtype=torch.long)


def quantize(latents: torch.Tensor, codebook: torch.Tensor) -> torch.Tensor:
    """Replace every latent pixel by its nearest centroid.

    Args:
        latents: ``(B, C, T, H, W)``.
        codebook: ``(K, C)``.

    Returns:
        ``(B, C, T, H, W)``, same dtype and device, each ``C``-vector one of the codebook's rows.
    """
    if latents.ndim != 5 or codebook.ndim != 2 or codebook.shape[1] != latents.shape[1]:
        raise ValueError(f"quantize needs latents (B, C, T, H, W) and a codebook (K, C) with the same C, "
                         f"got {tuple(latents.shape)} and {tuple(codebook.shape)}")
    B, C, T, H, W = latents.shape
    flat = latents.permute(0, 2, 3, 4, 1).reshape(-1, C)
    cb = codebook.to(latents.device, torch.float32)
    snapped = cb[nearest(flat, cb)]
    return snapped.reshape(B, T, H, W, C).permute(0, 4, 1, 2, 3).to(latents.dtype).contiguous()


def fit_codebooks(bank: torch.Tensor, ks=CODEBOOK_KS, n_pixels: int = FIT_PIXELS, seed: int = 0
                  ) -> dict[int, torch.Tensor]:
    """One K-means codebook per ``K`` over latent pixels sampled from a latent bank ``(N, C, F, h, w)``."""
    C = bank.shape[1]
    pixels = bank.permute(0, 2, 3, 4, 1).reshape(-1, C)
    g = torch.Generator().manual_seed(seed)
    sample = pixels[torch.randint(0, len(pixels), (min(n_pixels, len(pixels)),), generator=g)].float()
    return {int(k): kmeans(sample, int(k), seed=seed + int(k)) for k in ks}


def check_k(k: int, available) -> int:
    """``k`` if a codebook of that size is available, else ``ValueError`` naming those that are."""
    available = sorted(available)
    if not available:
        raise ValueError("this checkpoint has no discrete-history codebook, so it cannot run a '+D' schedule; "
                         "drop the '+D', or use the shipped checkpoint (framepack_lab.models.tiny.load_tiny())")
    if k not in available:
        raise ValueError(f"no codebook with K={k} in this checkpoint; it has K in {available} "
                         f"(write e.g. '+D{available[-2] if len(available) > 1 else available[0]}', or '+D' for "
                         f"K={DEFAULT_K})")
    return k
