"""Step caching for the HunyuanVideo backend through diffusers' own hook, FirstBlockCache.

``generate(backend, first_frame, cache=t, cond=...)`` on :class:`~.backend.HunyuanBackend`: at
every section :meth:`~.backend.HunyuanBackend.prepare_section` calls :func:`attach`, which puts
fresh ``FirstBlockCacheConfig(threshold=t)`` hooks on the transformer (``enable_cache``), so no
state carries over from the previous section; every transformer call of the section runs inside
:func:`evaluation` (diffusers' ``cache_context``), which counts it in the section's
:class:`~framepack_lab.step_cache.StepCache`; after the section's last call the hooks come off
again (``disable_cache``), so the transformer is left as it was (diffusers' own pipeline, which
sets no cache context, can use it).

diffusers 0.42.1 has no TeaCache for this model (the official demo's own code); FirstBlockCache is
its generic descendant and the one of diffusers' hooks that needs no per-model calibration
(MagCache needs fitted magnitude ratios, SeaCache a model adapter, FasterCache and Pyramid
Attention Broadcast skip attention by timestep ranges, TaylorSeer extrapolates features).

**How ``cache`` maps onto the hook.** The number is passed unchanged as FirstBlockCache's
``threshold``, whose rule differs from TeaCache's: the first block always runs, and the rest of
the stack is skipped (its last residual reused) when the first block's output residual changed,
relative to the last *computed* evaluation, by less than the threshold
(``mean|r_i - r_c| / mean|r_c| < threshold``, not accumulated, no rescaling). So the same number
skips a different share of evaluations than the official demo's TeaCache; measure it on your
model. As with TeaCache here, the first and the last evaluation of a section are always computed
(the last by clearing the hook's state just before it). The decision covers the whole batch.
"""

from __future__ import annotations

import weakref
from contextlib import contextmanager

from ...step_cache import StepCache

CONTEXT = "framepack_lab"  # the cache_context name our calls run under
_OURS = "_framepack_lab_step_cache"  # marks the hook config we installed
# transformer -> (its section's StepCache, FirstBlockCache's leader hook)
_attached: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()


def _ours(transformer) -> bool:
    return getattr(getattr(transformer, "_cache_config", None), _OURS, False)


def detach(transformer) -> None:
    """Remove the hooks :func:`attach` installed (a cache of the user's own is left alone)."""
    if _ours(transformer):
        transformer.disable_cache()
    _attached.pop(transformer, None)


def attach(transformer, step_cache: StepCache | None) -> None:
    """Start a section: remove our earlier hooks and, for a ``step_cache``, install fresh
    FirstBlockCache hooks at its threshold (so the hook's state starts empty).

    Raises:
        ValueError: the transformer already runs a diffusers cache of the user's own.
    """
    detach(transformer)
    if step_cache is None:
        return
    from diffusers.hooks import FirstBlockCacheConfig

    if getattr(transformer, "is_cache_enabled", False):
        raise ValueError(f"the transformer already runs a diffusers cache of your own "
                         f"({type(transformer._cache_config).__name__}); call transformer.disable_cache() "
                         "first, or leave generate's cache at None")
    config = FirstBlockCacheConfig(threshold=step_cache.threshold)
    setattr(config, _OURS, True)
    transformer.enable_cache(config)
    _attached[transformer] = (step_cache, _leader_hook(transformer))


def _leader_hook(transformer):
    """FirstBlockCache's hook on the first block: its state holds ``should_compute`` of the last call."""
    from diffusers.hooks.first_block_cache import _FBC_LEADER_BLOCK_HOOK

    for module in transformer.modules():
        registry = getattr(module, "_diffusers_hook", None)
        hook = registry.get_hook(_FBC_LEADER_BLOCK_HOOK) if registry is not None else None
        if hook is not None:
            return hook
    raise RuntimeError("FirstBlockCache's leader hook is missing from the transformer")


@contextmanager
def evaluation(transformer, step_cache: StepCache | None):
    """Run one transformer call of a section inside this block (the hook's cache context) and
    count it in ``step_cache``; with ``None``, make sure no hook of ours is left from an
    interrupted cached run and run plainly."""
    if step_cache is None:
        detach(transformer)
        yield
        return
    if _attached.get(transformer, (None,))[0] is not step_cache:  # another section's hooks, or none
        attach(transformer, step_cache)
    leader = _attached[transformer][1]
    if step_cache.forced:  # the section's first or last evaluation: no reference, so the hook computes
        transformer._reset_stateful_cache()
    with transformer.cache_context(CONTEXT):
        yield
        computed = bool(leader.state_manager.get_state().should_compute)
    step_cache.record(computed)
    if step_cache.calls >= step_cache.n_calls:  # the section is done: leave the transformer as it was
        detach(transformer)
