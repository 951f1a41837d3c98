"""Resumable training state: the DiT, its EMA and the AdamW moments, saved and loaded together.

``DIR/state.safetensors`` holds the tensors (``model.*``, ``ema.*``, ``opt.<param>.exp_avg`` and
``opt.<param>.exp_avg_sq``); ``DIR/state.json`` the step reached and the training record.
:func:`~framepack_lab.train.train` writes them every ``checkpoint_every`` steps and on exit and
reads them back for ``--resume``. Needs torch and safetensors.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

from .runtime import save_safetensors


def save_state(out: Path, model, ema, opt, step: int, record: dict) -> None:
    """Write ``model``, ``ema`` and the moments of ``opt`` at ``step`` with ``record`` into ``out``."""
    tensors = {f"model.{k}": v.detach().contiguous() for k, v in model.state_dict().items()}
    tensors.update({f"ema.{k}": v.detach().contiguous() for k, v in ema.state_dict().items()})
    names = {p: n for n, p in model.named_parameters()}
    for p, st in opt.state.items():
        for key in ("exp_avg", "exp_avg_sq"):
            tensors[f"opt.{names[p]}.{key}"] = st[key].contiguous()
    save_safetensors(tensors, out / "state.safetensors")
    (out / "state.json").write_text(json.dumps({"step": step, "record": record}, indent=2))


def load_state(out: Path, model, ema, opt) -> tuple[int, dict]:
    """Load what :func:`save_state` wrote into ``model``, ``ema`` and ``opt``; returns ``(step, record)``."""
    from safetensors.torch import load_file

    t = load_file(str(out / "state.safetensors"))
    meta = json.loads((out / "state.json").read_text())
    model.load_state_dict({k[6:]: v for k, v in t.items() if k.startswith("model.")})
    ema.load_state_dict({k[4:]: v for k, v in t.items() if k.startswith("ema.")})
    step = meta["step"]
    for n, p in model.named_parameters():
        if f"opt.{n}.exp_avg" in t:
            opt.state[p] = {"step": torch.tensor(float(step)), "exp_avg": t[f"opt.{n}.exp_avg"],
                            "exp_avg_sq": t[f"opt.{n}.exp_avg_sq"]}
    return step, meta["record"]
