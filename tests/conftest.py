"""Shared fixtures: a tiny model config and a random-weight tiny backend (no checkpoint needed).

``make test`` runs the suite on two pytest-xdist workers; each gets its share of the cores
(:func:`pytest_configure`), so the two never oversubscribe the CPU."""

import os

import pytest
import torch

from framepack_lab.models.autoencoder import TinyAutoencoder
from framepack_lab.models.tiny import TinyBackend, TinyConfig, TinyFramePack


def pytest_configure(config):
    """Under pytest-xdist, give this worker (and the notebook kernels and subprocesses it starts)
    ``cores // workers`` threads: two workers at two threads each on two cores run 10-30x slower."""
    workers = os.environ.get("PYTEST_XDIST_WORKER_COUNT")
    if workers:
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
        threads = max(1, cores // int(workers))
        os.environ["OMP_NUM_THREADS"] = os.environ["MKL_NUM_THREADS"] = str(threads)
        torch.set_num_threads(threads)


def tiny_config(**kw) -> TinyConfig:
    """A model small enough for unit tests on one CPU thread."""
    return TinyConfig(**{"width": 32, "depth": 1, "heads": 2, "rope_axes": (4, 6, 6), "ae_width": 8, **kw})


@torch.no_grad()
def randomize_zero_init(model: torch.nn.Module, seed: int = 0, std: float = 0.1) -> torch.nn.Module:
    """Give the zero-initialised layers (adaLN, output) random weights, so the model's output
    depends on its inputs (at the official init the model predicts x0 = 0 everywhere)."""
    g = torch.Generator().manual_seed(seed)
    for p in model.parameters():
        if not p.any():
            p.copy_(torch.randn(p.shape, generator=g) * std)
    return model


def random_backend(seed: int = 0, **config) -> TinyBackend:
    """A random-weight backend; ``config`` overrides :func:`tiny_config` (e.g. ``history_noise=True``)."""
    torch.manual_seed(seed)
    model = randomize_zero_init(TinyFramePack(tiny_config(**config)), seed)
    ae = TinyAutoencoder(4, width=8)
    return TinyBackend(model.eval(), ae.eval())


@pytest.fixture(scope="session")
def backend() -> TinyBackend:
    """A random-weight tiny backend: TinyFramePack (width 32, depth 1) + TinyAutoencoder(width 8)."""
    return random_backend(0)
