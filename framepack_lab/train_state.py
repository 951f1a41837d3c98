"""Resumable training state: the DiT, its EMA, the AdamW moments and the batch-drawing RNGs.

``DIR/state.safetensors`` holds the tensors (``model.*``, ``ema.*``, ``opt.<param>.exp_avg``,
``opt.<param>.exp_avg_sq`` and, when saved, ``rng.torch``: the ``torch.Generator`` state);
``DIR/state.json`` the step reached, the training record and, when saved, ``rng.python`` (the
``random.Random`` state). :class:`~framepack_lab.train.Trainer` writes them every
``checkpoint_every`` steps and on exit and reads them back for ``--resume``; with the RNG states a
resumed run draws the very batches the uninterrupted run would have drawn. Checkpoints without
them (older ones, distributed runs) load as before. Needs torch and safetensors.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

from .runtime import save_safetensors


def _as_tuples(x):
    """``random.Random.getstate()`` back from JSON (lists -> tuples, recursively)."""
    return tuple(_as_tuples(v) for v in x) if isinstance(x, list) else x


def save_state(out: Path, model, ema, opt, step: int, record: dict, rng: dict | None = None) -> None:
    """Write ``model``, ``ema`` and the moments of ``opt`` at ``step`` with ``record`` into ``out``;
    ``rng`` ``{"python": random.Random.getstate(), "torch": torch.Generator.get_state()}`` too
    when given."""
    tensors = {f"model.{k}": v.detach().contiguous() for k, v in model.state_dict().items()}
    tensors.update({f"ema.{k}": v.detach().contiguous() for k, v in ema.state_dict().items()})
    names = {p: n for n, p in model.named_parameters()}
    for p, st in opt.state.items():
        for key in ("exp_avg", "exp_avg_sq"):
            tensors[f"opt.{names[p]}.{key}"] = st[key].contiguous()
    meta = {"step": step, "record": record}
    if rng is not None:
        tensors["rng.torch"] = rng["torch"].contiguous()
        meta["rng"] = {"python": rng["python"]}
    save_safetensors(tensors, out / "state.safetensors")
    (out / "state.json").write_text(json.dumps(meta, indent=2))


def load_state(out: Path, model, ema, opt, with_rng: bool = False):
    """Load what :func:`save_state` wrote into ``model``, ``ema`` and ``opt``; returns ``(step, record)``,
    or ``(step, record, rng)`` with ``with_rng`` (``rng`` None when the checkpoint has no RNG states)."""
    from safetensors.torch import load_file

    t = load_file(str(out / "state.safetensors"))
    meta = json.loads((out / "state.json").read_text())
    saved = {k[6:] for k in t if k.startswith("model.")}
    wanted = set(model.state_dict())
    if saved != wanted:
        parts = sorted({k.split(".")[0] for k in saved ^ wanted})
        raise ValueError(f"the checkpoint in {out} was saved by a model with other parts ({', '.join(parts)} "
                         "differ): resume with the config's \"model\" section the run started with (e.g. the same "
                         "history_noise and hidden_time_max), or start a new --out folder")
    model.load_state_dict({k[6:]: v for k, v in t.items() if k.startswith("model.")})
    ema.load_state_dict({k[4:]: v for k, v in t.items() if k.startswith("ema.")})
    step = meta["step"]
    for n, p in model.named_parameters():
        if f"opt.{n}.exp_avg" in t:
            opt.state[p] = {"step": torch.tensor(float(step)), "exp_avg": t[f"opt.{n}.exp_avg"].to(p.device),
                            "exp_avg_sq": t[f"opt.{n}.exp_avg_sq"].to(p.device)}
    if not with_rng:
        return step, meta["record"]
    rng = None
    if "rng" in meta and "rng.torch" in t:
        rng = {"python": _as_tuples(meta["rng"]["python"]), "torch": t["rng.torch"]}
    return step, meta["record"], rng
