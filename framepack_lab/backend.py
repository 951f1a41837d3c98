"""The backend contract: what :func:`framepack_lab.generate.generate` needs from a model.

A backend turns frames into latents and back, and predicts the flow velocity of a noisy section
given its packed context. The runner calls these methods and nothing else; it knows no model's
VAE, conditioning or caches.

    class MyBackend(BackendBase):
        kernels = frozenset({Kernel.k(1), Kernel.k(2)})
        def latent_size(self, height, width): ...
        def encode(self, frames): ...
        def decode(self, latents): ...
        def velocity(self, x_t, sigma, context, cond=None): ...

:class:`BackendBase` gives the optional hooks their defaults, so the runner never probes with
``hasattr``.
"""

from __future__ import annotations

from typing import Any, Callable, Protocol, runtime_checkable

import torch

from .packing import PackedContext
from .plan import Plan, Step
from .schedule import Kernel

# Generation features a backend may offer beyond plain packed-context sampling. The runner refuses
# an option whose feature the backend does not list, before any work.
HISTORY_NOISE = "history_noise"        # the model was told the noise level of its history in training
HISTORY_GUIDANCE = "history_guidance"  # the model also predicts with no history (history dropout)
# step caching (generate(cache=threshold), framepack_lab.step_cache): a backend listing it accepts
# prepare_section(context, step_cache=StepCache) and skips model evaluations the cache allows
STEP_CACHE = "step_cache"
DISCRETE_HISTORY = "discrete_history"  # the checkpoint ships K-means codebooks for '+D' schedules


@runtime_checkable
class Backend(Protocol):
    """What a FramePack model offers the runner.

    Attributes:
        name: short name shown in panels and errors.
        kernels: the patchify kernels the model has embeddings for (``k1`` at least).
        features: optional features (:data:`HISTORY_NOISE`, :data:`HISTORY_GUIDANCE`,
            :data:`STEP_CACHE`).
    """

    name: str

    @property
    def kernels(self) -> frozenset[Kernel]: ...

    @property
    def features(self) -> frozenset[str]: ...

    def latent_size(self, height: int, width: int) -> tuple[int, int]:
        """Latent ``(h, w)`` of a ``height x width`` frame; ``ValueError`` for sizes it cannot take."""

    def encode(self, frames: torch.Tensor) -> torch.Tensor:
        """Frames ``(B, T, H, W, 3)`` in [0, 1] -> latents ``(B, C, T', h, w)``."""

    def decode(self, latents: torch.Tensor) -> torch.Tensor:
        """Latents ``(B, C, T', h, w)`` -> frames ``(B, T, H, W, 3)`` in [0, 1]."""

    def velocity(self, x_t: torch.Tensor, sigma: torch.Tensor, context: PackedContext, cond: Any = None
                 ) -> torch.Tensor:
        """Flow velocity ``v = eps - x0`` of the noisy section ``x_t (B, C, S, h, w)`` at ``sigma (B,)``."""

    def check_plan(self, plan: Plan) -> None:
        """Raise ``ValueError`` for a plan the backend cannot run (called before any work)."""

    def prepare_section(self, context: PackedContext) -> Any:
        """Per-section state computed once before the sampler's steps (e.g. RoPE tables); the
        runner stores it in ``context.prepared`` for :meth:`velocity`. No caches hidden elsewhere."""

    def bind_condition(self, plan: Plan, cond: Any) -> Callable[[Step], Any]:
        """Each step's condition for :meth:`velocity` (e.g. per-section prompts); ``ValueError``
        for a ``cond`` the plan cannot honour (called before any work)."""


class BackendBase:
    """Defaults for the optional parts of :class:`Backend`."""

    name: str = "backend"

    @property
    def features(self) -> frozenset[str]:
        return frozenset()

    def check_plan(self, plan: Plan) -> None:
        return None

    def prepare_section(self, context: PackedContext) -> Any:
        return None

    def bind_condition(self, plan: Plan, cond: Any) -> Callable[[Step], Any]:
        return lambda step: cond

    def codebook(self, k: int) -> torch.Tensor:
        """The ``(K, C)`` discrete-history codebook for ``'+D'`` schedules (:mod:`framepack_lab.discrete`)."""
        raise ValueError(f"backend {self.name!r} has no discrete-history codebook, so it cannot run a '+D' "
                         "schedule; drop the '+D' from the schedule name")


def check_features(backend: Backend, **options: bool) -> None:
    """Refuse generation options the backend cannot honour: ``check_features(b, history_noise=True)``."""
    missing = [name for name, wanted in options.items() if wanted and name not in backend.features]
    if missing:
        have = ", ".join(sorted(backend.features)) or "none"
        raise ValueError(
            f"backend {backend.name!r} cannot honour {', '.join(missing)} (it was not trained for it; its "
            f"features: {have}); leave {' and '.join(missing)} at the default, or use a backend that has it "
            "(the shipped tiny model does)")
