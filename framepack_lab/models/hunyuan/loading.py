"""Loading HunyuanVideo FramePack from a local weights folder: layout checks, offload modes, devices.

**Weights folder** (:data:`LAYOUT`, checked by :func:`check_weights_dir` before anything loads)::

    WEIGHTS_DIR/
      transformer/        lllyasviel/FramePackI2V_HY   (or FramePack_F1_I2V_HY_20250503 for F1)
      vae/ text_encoder/ text_encoder_2/ tokenizer/ tokenizer_2/ [scheduler/]
                          hunyuanvideo-community/HunyuanVideo (those subfolders)
      image_encoder/ feature_extractor/
                          lllyasviel/flux_redux_bfl (those subfolders)

e.g. ``huggingface-cli download lllyasviel/FramePackI2V_HY --local-dir WEIGHTS_DIR/transformer``,
and for the other two repos download them once and link or copy their subfolders in. Everything is
loaded with ``from_pretrained(..., local_files_only=True)``: no hub access unless
``load_hunyuan(allow_download=True)`` is asked for (then weights come from, or go into, your HF
cache: about 50 GB).

**Which GPU runs what.** Estimates from parameter counts (transformer 13B = 26 GB in bf16, Llama 8B
text encoder = 15 GB, VAE, CLIP and SigLIP about 1.5 GB) plus activations at 480p; **not measured
in this project**, which has no GPU. ``offload`` (validated by :func:`check_offload`):

* ``"none"``: everything resident, ~48 GB free (80 GB A100 / H100, 48 GB cards borderline);
* ``"model"``: ``enable_model_cpu_offload``, one whole model on the GPU at a time: the 13B
  transformer alone needs ~32 GB (40 GB and up);
* ``"group"``: diffusers' group offloading (leaf level, CUDA streams): weights stream layer by layer,
  ~8 GB free is the floor we assume (so 12, 16 and 24 GB cards), slower than the above; the host
  needs about 48 GB of RAM to hold the weights;
* ``"auto"`` (default): the lightest of these that fits the free GPU memory.

bf16 everywhere by default and VAE tiling on. The official FramePack demo streams its own way and
runs in 6 GB; diffusers' offloading is not that code. On CPU the loader refuses ``"cuda"``; a CPU
run of the real model is possible in principle (``device="cpu"``, ``offload="none"``, ~50 GB RAM)
but would take hours per section.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import NamedTuple

import torch

from ...runtime import resolve_device
from .backend import HunyuanBackend

OFFLOAD_MODES = ("auto", "none", "model", "group")
# Free GPU memory (GB) each offload mode needs at 480p in bf16: ESTIMATES, not measured (no GPU here)
MEMORY_GB = {"none": 48.0, "model": 32.0, "group": 8.0}
MIN_VOCAB = 1000  # the real tokenizers have 49,408 (CLIP) and 128,256 (Llama 3) tokens


# ------------------------------------------------------------------------------ the folder
class Part(NamedTuple):
    """One subfolder of the weights folder."""

    kind: str       # "model" | "tokenizer" | "processor" | "scheduler"
    what: str       # the class it holds
    repo: str       # where it comes from on the Hugging Face hub
    subfolder: str | None


_HY = "hunyuanvideo-community/HunyuanVideo"
_REDUX = "lllyasviel/flux_redux_bfl"
LAYOUT: dict[str, Part] = {
    "transformer": Part("model", "HunyuanVideoFramepackTransformer3DModel", "lllyasviel/FramePackI2V_HY", None),
    "vae": Part("model", "AutoencoderKLHunyuanVideo", _HY, "vae"),
    "text_encoder": Part("model", "LlamaModel", _HY, "text_encoder"),
    "text_encoder_2": Part("model", "CLIPTextModel", _HY, "text_encoder_2"),
    "tokenizer": Part("tokenizer", "Llama tokenizer", _HY, "tokenizer"),
    "tokenizer_2": Part("tokenizer", "CLIP tokenizer", _HY, "tokenizer_2"),
    "image_encoder": Part("model", "SiglipVisionModel", _REDUX, "image_encoder"),
    "feature_extractor": Part("processor", "SiglipImageProcessor", _REDUX, "feature_extractor"),
}
OPTIONAL = {"scheduler": Part("scheduler", "FlowMatchEulerDiscreteScheduler", _HY, "scheduler")}
_NEEDS = {
    "model": (("config.json",), ("*.safetensors", "*.bin")),
    "tokenizer": (("tokenizer.json", "tokenizer_config.json", "tokenizer.model", "vocab.json"),),
    "processor": (("preprocessor_config.json",),),
    "scheduler": (("scheduler_config.json",),),
}


def _layout_text() -> str:
    lines = [f"  {name + '/':<19} {p.what} (hub: {p.repo}{', ' + p.subfolder if p.subfolder else ''})"
             for name, p in {**LAYOUT, **OPTIONAL}.items()]
    return "expected layout of WEIGHTS_DIR (scheduler/ optional):\n" + "\n".join(lines)


def _part_problem(folder: Path, part: Part) -> str | None:
    if not folder.is_dir():
        return f"{folder.name}/ is missing ({part.what}, from {part.repo})"
    for alternatives in _NEEDS[part.kind]:
        if not any(next(folder.glob(pattern), None) for pattern in alternatives):
            return f"{folder.name}/ has none of {', '.join(alternatives)}"
    return None


def check_weights_dir(weights_dir: str | Path) -> Path:
    """Check the weights folder up front; ``FileNotFoundError`` listing everything missing.

    Also refuses a transformer that is not a FramePack one (e.g. plain HunyuanVideo's): its
    ``config.json`` must have ``has_clean_x_embedder`` (the 1x / 2x / 4x history embeddings).
    """
    root = Path(weights_dir).expanduser()
    if not root.exists():
        raise FileNotFoundError(
            f"no weights folder at {root}. Download the HunyuanVideo FramePack weights there (see the "
            f"framepack_lab.models.hunyuan.loading docstring), or call load_hunyuan(allow_download=True) on a "
            f"machine with network access.\n{_layout_text()}")
    if not root.is_dir():
        raise FileNotFoundError(f"{root} is a file; WEIGHTS_DIR must be a folder.\n{_layout_text()}")
    problems = [msg for name, part in LAYOUT.items() if (msg := _part_problem(root / name, part))]
    if (root / "scheduler").exists() and (msg := _part_problem(root / "scheduler", OPTIONAL["scheduler"])):
        problems.append(msg)
    if problems:
        hint = ""
        if (root / "config.json").exists():
            hint = (f"\n{root} itself has a config.json: it looks like ONE model's folder. Point WEIGHTS_DIR at the "
                    "folder that holds transformer/, vae/, text_encoder/, ... instead.")
        raise FileNotFoundError(f"weights folder {root} has the wrong layout:\n  - " + "\n  - ".join(problems)
                                + hint + "\n" + _layout_text())
    try:
        config = json.loads((root / "transformer" / "config.json").read_text())
    except json.JSONDecodeError as e:
        raise ValueError(f"{root / 'transformer' / 'config.json'} is not valid JSON ({e}); download it again") from e
    if not config.get("has_clean_x_embedder"):
        raise FileNotFoundError(
            f"{root / 'transformer'} is not a FramePack transformer (its config.json has no has_clean_x_embedder; "
            f"class {config.get('_class_name', '?')}): plain HunyuanVideo cannot take packed history. Put "
            "lllyasviel/FramePackI2V_HY (or FramePack_F1_I2V_HY_20250503) in transformer/.")
    return root


# ----------------------------------------------------------------------- offload and device
def check_offload(offload: str, *, on_cpu: bool = False, allow_auto: bool = True) -> str:
    """The one check of an offload mode (``ValueError`` saying what to use instead).

    Args:
        offload: one of :data:`OFFLOAD_MODES`.
        on_cpu: the model runs on the CPU, where ``"model"`` / ``"group"`` have no GPU to move to.
        allow_auto: ``False`` where ``"auto"`` must already be resolved (:func:`choose_offload`).
    """
    modes = OFFLOAD_MODES if allow_auto else tuple(m for m in OFFLOAD_MODES if m != "auto")
    if offload not in modes:
        where = "" if allow_auto else " here (resolve 'auto' with choose_offload first)"
        raise ValueError(f"offload must be one of {', '.join(modes)}{where}, got {offload!r}")
    if on_cpu and offload in ("model", "group"):
        raise ValueError(f"offload={offload!r} moves weights between the CPU and a GPU; on the CPU use "
                         "offload='none' (or 'auto')")
    return offload


def choose_offload(offload: str, free_gb: float | None) -> str:
    """Resolve ``offload`` against free GPU memory (``None``: on the CPU, nothing to check).

    ``"auto"`` picks the lightest of none / model / group that fits :data:`MEMORY_GB`; an explicit
    mode that does not fit raises ``ValueError`` naming one that does. Estimates, not measurements.
    """
    check_offload(offload, on_cpu=free_gb is None)
    if free_gb is None:
        return "none"
    fits = [m for m in ("none", "model", "group") if free_gb >= MEMORY_GB[m]]
    if offload == "auto":
        if not fits:
            raise ValueError(
                f"too little GPU memory: {free_gb:.1f} GB free, and even offload='group' needs about "
                f"{MEMORY_GB['group']:.0f} GB (an estimate). Close other GPU programs, use a larger GPU, or try "
                "the official FramePack demo, which streams weights in about 6 GB.")
        return fits[0]
    if offload not in fits:
        advice = f"use offload={fits[0]!r}" if fits else "free GPU memory or use a larger GPU"
        raise ValueError(f"too little GPU memory for offload={offload!r}: {free_gb:.1f} GB free, about "
                         f"{MEMORY_GB[offload]:.0f} GB needed (an estimate, not measured); {advice}")
    return offload


def _check_device(device: str | torch.device) -> torch.device:
    """The device for the 13B model: CUDA or CPU (``"auto"``: CUDA when available), or say what to do."""
    return resolve_device(device, allowed=("cuda", "cpu"), advice=(
        "The 13B model needs a GPU: run on one with a CUDA build of torch (make setup TORCH_SPEC=... , see the "
        "Makefile), or use the tiny stand-in (framepack_lab.models.hunyuan.tiny_backend) or the embedded "
        "model (framepack_lab.models.tiny.load_tiny) here."))


def _free_gb(device: torch.device) -> float | None:
    if device.type != "cuda":
        return None
    free, _ = torch.cuda.mem_get_info(device)
    return free / 1024**3


# -------------------------------------------------------------------------------- loading
def _check_tokenizer(tokenizer, name: str, root: Path | None) -> None:
    """An incomplete tokenizer folder (or an uncached one offline) can load as a near-empty
    tokenizer without any error; refuse it instead of encoding every prompt as unknown tokens."""
    if len(tokenizer) < MIN_VOCAB:
        where = root / name if root is not None else f"the hub / HF cache ({LAYOUT[name].repo})"
        raise ValueError(f"{name} from {where} has only {len(tokenizer)} tokens: its files are incomplete. Copy the "
                         f"whole {name}/ folder of {LAYOUT[name].repo} (tokenizer.json, tokenizer_config.json, "
                         "special_tokens_map.json, ...) again.")


def _load_components(root: Path | None, dtype: torch.dtype, allow_download: bool) -> dict:
    """``from_pretrained`` every part from ``root`` (local files only), or from the hub / HF cache."""
    import transformers
    from diffusers import (AutoencoderKLHunyuanVideo, FlowMatchEulerDiscreteScheduler,
                           HunyuanVideoFramepackTransformer3DModel)

    new_kw = tuple(int(v) for v in transformers.__version__.split(".")[:2]) >= (4, 56)
    hf_dtype = {"dtype": dtype} if new_kw else {"torch_dtype": dtype}
    classes = {
        "transformer": (HunyuanVideoFramepackTransformer3DModel, {"torch_dtype": dtype}),
        "vae": (AutoencoderKLHunyuanVideo, {"torch_dtype": dtype}),
        "text_encoder": (transformers.LlamaModel, hf_dtype),
        "text_encoder_2": (transformers.CLIPTextModel, hf_dtype),
        "tokenizer": (transformers.AutoTokenizer, {}),
        "tokenizer_2": (transformers.AutoTokenizer, {}),
        "image_encoder": (transformers.SiglipVisionModel, hf_dtype),
        "feature_extractor": (transformers.SiglipImageProcessor, {}),
        "scheduler": (FlowMatchEulerDiscreteScheduler, {}),
    }
    components = {}
    for name, (cls, kw) in classes.items():
        part = LAYOUT.get(name) or OPTIONAL[name]
        if root is not None:
            if name == "scheduler" and not (root / name).exists():
                continue
            components[name] = cls.from_pretrained(str(root / name), local_files_only=True, **kw)
        else:
            sub = {"subfolder": part.subfolder} if part.subfolder else {}
            components[name] = cls.from_pretrained(part.repo, **sub, **kw)
        if part.kind == "tokenizer":
            _check_tokenizer(components[name], name, root)
    if "scheduler" not in components:  # the official rule: dynamic shift, mu capped at ln 7
        components["scheduler"] = FlowMatchEulerDiscreteScheduler(use_dynamic_shifting=True)
    return components


def backend_from_components(components: dict, device: str | torch.device = "cpu", offload: str = "none",
                            vae_tiling: bool = True) -> HunyuanBackend:
    """Wrap loaded components (a dict with the pipeline's component names) as a backend.

    ``offload``: ``"none"`` (move everything to ``device``), ``"model"`` (diffusers'
    ``enable_model_cpu_offload``) or ``"group"`` (``enable_group_offload``, leaf level, CUDA streams).
    """
    from diffusers import FlowMatchEulerDiscreteScheduler, HunyuanVideoFramepackPipeline

    device = _check_device(device)
    check_offload(offload, on_cpu=device.type != "cuda", allow_auto=False)
    components = dict(components)
    components.setdefault("scheduler", FlowMatchEulerDiscreteScheduler(use_dynamic_shifting=True))
    missing = sorted(set(LAYOUT) - set(components))
    if missing:
        raise ValueError(f"components missing: {', '.join(missing)}")
    pipe = HunyuanVideoFramepackPipeline(**components)
    if vae_tiling:
        pipe.vae.enable_tiling()
    for module in pipe.components.values():
        if isinstance(module, torch.nn.Module):
            module.eval()
    if offload == "model":
        pipe.enable_model_cpu_offload(device=device)
    elif offload == "group":
        pipe.enable_group_offload(onload_device=device, offload_device=torch.device("cpu"),
                                  offload_type="leaf_level", use_stream=True)
    else:
        pipe.to(device)
    return HunyuanBackend(pipe, offload)


def load_hunyuan(weights_dir: str | Path | None = None, *, device: str | torch.device = "cuda",
                 dtype: torch.dtype = torch.bfloat16, offload: str = "auto", vae_tiling: bool = True,
                 allow_download: bool = False) -> HunyuanBackend:
    """Load HunyuanVideo FramePack as a backend.

    Args:
        weights_dir: the folder of :data:`LAYOUT` (checked first; see the module docstring).
        device: ``"cuda"`` (default; refused with advice when there is no GPU) or ``"cpu"``.
        dtype: weights dtype for every model (default bf16).
        offload: ``"auto"`` | ``"none"`` | ``"model"`` | ``"group"``; see :func:`choose_offload`.
        vae_tiling: decode (and encode) large frames in tiles to bound VAE memory.
        allow_download: with no ``weights_dir``, fetch from the Hugging Face hub (or your HF cache);
            off by default so nothing touches the network unless you ask.

    Returns:
        A :class:`~.backend.HunyuanBackend`; call ``set_condition(prompt, first_frame)`` before generating.
    """
    check_offload(offload)
    if not isinstance(dtype, torch.dtype) or not dtype.is_floating_point:
        raise ValueError(f"dtype must be a floating torch dtype (torch.bfloat16, torch.float16, torch.float32), "
                         f"got {dtype!r}")
    if weights_dir is None and not allow_download:
        raise ValueError("no weights_dir given and allow_download=False: pass the folder that holds the HunyuanVideo "
                         "FramePack weights (load_hunyuan('/path/to/WEIGHTS_DIR')), or allow_download=True to fetch "
                         f"about 50 GB from the Hugging Face hub into your HF cache.\n{_layout_text()}")
    root = check_weights_dir(weights_dir) if weights_dir is not None else None
    device = _check_device(device)
    mode = choose_offload(offload, _free_gb(device))
    components = _load_components(root, dtype, allow_download)
    return backend_from_components(components, device, mode, vae_tiling)
