"""The embedded FramePack: a tiny latent DiT that reads top to bottom.

Tokens: the noisy section through its own (1, 2, 2) patch embedding; every packed context group
through the clean embedding of its kernel (one independent patchify layer per kernel, k1 .. k8;
bigger rates are average-pooled first by the packer). Each token gets 3D RoPE phases, pooled per
kernel (see :mod:`framepack_lab.rope`). A model built with ``image_tokens`` also reads the first
frame in every step as tokens of its own patch embedding with no RoPE phase (the official model
gives every section its input image as SigLIP tokens beside the text, which carry no RoPE either).
Full attention over context and noisy tokens; adaLN-zero
modulation by the flow time; the model predicts the clean section x0, and :class:`TinyBackend`
turns that into the velocity the sampler integrates (``v = (x_t - x0) / sigma``).

Step caching (``generate(..., cache=0.15)``, :mod:`framepack_lab.step_cache`): TeaCache's rule
probes the first block's modulated input and, while it barely changed, skips the block stack
and reuses its last residual. With the cache off the model runs exactly as without it.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F

from .. import runtime, world
from ..backend import DISCRETE_HISTORY, HISTORY_GUIDANCE, HISTORY_NOISE, STEP_CACHE, BackendBase
from ..packing import PackedContext, check_latent_size
from ..rope import apply_rope
from ..schedule import BASE, Kernel
from ..step_cache import StepCache
from .autoencoder import TinyAutoencoder


@dataclass
class TinyConfig:
    """Sizes of the tiny DiT and its autoencoder."""

    latent_channels: int = 4
    width: int = 128
    depth: int = 4
    heads: int = 4
    rope_axes: tuple[int, int, int] = (8, 12, 12)  # channels per head for (t, y, x); sum = width/heads
    rope_theta: float = 256.0
    kernels: tuple[int, ...] = (1, 2, 4, 8)  # kN embeddings the model owns
    ae_width: int = 32
    frame_size: int = 64
    # the model is told how noisy its history is (training with history noise, Diffusion Forcing
    # style) and was trained with history dropout; False for checkpoints trained without them,
    # which then refuse history_noise > 0 and history guidance
    history_noise: bool = False
    # > 0: the model is also told the true frames between the anchor and its section that the
    # RoPE positions leave out (Step.hidden_time, clipped at this many frames, the longest
    # distance training shows); 0 for checkpoints trained without it
    hidden_time_max: int = 0
    # True: the first frame also enters every step as its own tokens with no RoPE phase (time- and
    # place-free), the tiny analogue of the official model's image embedding of the input frame
    # (SigLIP tokens beside the text, in every section). False for checkpoints trained without it
    image_tokens: bool = False

    def __post_init__(self):
        self.rope_axes = tuple(self.rope_axes)
        self.kernels = tuple(self.kernels)
        if sum(self.rope_axes) != self.width // self.heads:
            raise ValueError(f"rope_axes {self.rope_axes} must sum to the head dim {self.width // self.heads}")
        h = self.hidden_time_max
        if not isinstance(h, int) or isinstance(h, bool) or h < 0:
            raise ValueError(f"hidden_time_max is a whole number of latent frames >= 0 (0: the model is not told "
                             f"the hidden time), got {h!r}")
        if not isinstance(self.image_tokens, bool):
            raise ValueError(f"image_tokens is true or false, got {self.image_tokens!r}")

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2)

    @classmethod
    def from_dict(cls, d: dict) -> "TinyConfig":
        return cls(**{k: v for k, v in d.items() if k in cls.__dataclass_fields__})


# model fields whose part starts as a no-op (zero-initialised output), so a run may switch them on
# over a checkpoint that has them off and start from exactly its predictions (train --init-from)
ZERO_INIT_FIELDS = ("hidden_time_max",)
HIDDEN_TIME_SCALE = 1000.0  # hidden frames / this = the "flow time" whose features timestep_embedding makes


def timestep_embedding(sigma: torch.Tensor, dim: int) -> torch.Tensor:
    """Sinusoidal features of the flow time ``sigma`` in [0, 1]: ``(B,)`` -> ``(B, dim)``."""
    half = dim // 2
    freqs = torch.exp(-math.log(10000.0) * torch.arange(half, dtype=torch.float32) / half)
    args = (sigma.float() * 1000.0)[:, None] * freqs[None]
    return torch.cat([args.cos(), args.sin()], dim=-1)


class Block(nn.Module):
    """A DiT block: adaLN-zero modulated attention (with RoPE) and MLP."""

    def __init__(self, width: int, heads: int):
        super().__init__()
        self.heads = heads
        self.norm1 = nn.LayerNorm(width, elementwise_affine=False, eps=1e-6)
        self.qkv = nn.Linear(width, 3 * width)
        self.q_norm = nn.RMSNorm(width // heads, eps=1e-6)
        self.k_norm = nn.RMSNorm(width // heads, eps=1e-6)
        self.proj = nn.Linear(width, width)
        self.norm2 = nn.LayerNorm(width, elementwise_affine=False, eps=1e-6)
        self.mlp = nn.Sequential(nn.Linear(width, 4 * width), nn.GELU(approximate="tanh"), nn.Linear(4 * width, width))
        self.ada = nn.Linear(width, 6 * width)
        nn.init.zeros_(self.ada.weight)
        nn.init.zeros_(self.ada.bias)

    def modulation(self, temb: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """adaLN-zero's ``shift1, scale1, gate1, shift2, scale2, gate2``, each ``(B, 1, width)``."""
        return self.ada(F.silu(temb))[:, None].chunk(6, dim=-1)

    def attention_input(self, x: torch.Tensor, modulation: tuple[torch.Tensor, ...]) -> torch.Tensor:
        """The modulated input of the attention ``LN(x) (1 + scale1) + shift1``: ``(B, N, width)``
        (also TeaCache's probe of how much a step's input changed)."""
        s1, b1 = modulation[:2]
        return self.norm1(x) * (1 + s1) + b1

    def forward(self, x: torch.Tensor, temb: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
        """``x (B, N, width)``, ``temb (B, width)``, ``cos/sin (N, head_dim)`` -> ``(B, N, width)``."""
        B, N, W = x.shape
        s1, b1, g1, s2, b2, g2 = mod = self.modulation(temb)
        h = self.attention_input(x, mod)
        q, k, v = self.qkv(h).view(B, N, 3, self.heads, W // self.heads).permute(2, 0, 3, 1, 4)
        q, k = apply_rope(self.q_norm(q), cos, sin), apply_rope(self.k_norm(k), cos, sin)
        a = F.scaled_dot_product_attention(q, k, v).transpose(1, 2).reshape(B, N, W)
        x = x + g1 * self.proj(a)
        h = self.norm2(x) * (1 + s2) + b2
        return x + g2 * self.mlp(h)


class TinyFramePack(nn.Module):
    """The tiny FramePack DiT. ``forward(x_t, sigma, context) -> x0`` on latents ``(B, C, S, h, w)``."""

    def __init__(self, config: TinyConfig | None = None):
        super().__init__()
        self.config = c = config or TinyConfig()
        self.kernels = tuple(Kernel.k(n) for n in c.kernels)
        self.embed_noisy = nn.Conv3d(c.latent_channels, c.width, BASE.size, stride=BASE.size)
        self.embed_clean = nn.ModuleDict({
            k.name: nn.Conv3d(c.latent_channels, c.width, k.size, stride=k.size) for k in self.kernels
        })
        self.time_mlp = nn.Sequential(nn.Linear(c.width, c.width), nn.SiLU(), nn.Linear(c.width, c.width))
        if c.history_noise:  # the history's noise level, added to the flow-time embedding
            self.history_mlp = nn.Sequential(nn.Linear(c.width, c.width), nn.SiLU(), nn.Linear(c.width, c.width))
            nn.init.zeros_(self.history_mlp[-1].weight)
            nn.init.zeros_(self.history_mlp[-1].bias)
        if c.hidden_time_max:  # the anchor's hidden distance, added to the flow-time embedding too
            self.hidden_mlp = nn.Sequential(nn.Linear(c.width, c.width), nn.SiLU(), nn.Linear(c.width, c.width))
            nn.init.zeros_(self.hidden_mlp[-1].weight)
            nn.init.zeros_(self.hidden_mlp[-1].bias)
        if c.image_tokens:  # the first frame's own patch embedding, for its RoPE-free tokens
            self.embed_image = nn.Conv3d(c.latent_channels, c.width, BASE.size, stride=BASE.size)
        self.blocks = nn.ModuleList(Block(c.width, c.heads) for _ in range(c.depth))
        self.norm_out = nn.LayerNorm(c.width, elementwise_affine=False, eps=1e-6)
        self.ada_out = nn.Linear(c.width, 2 * c.width)
        self.out = nn.Linear(c.width, c.latent_channels * 4)
        for m in (self.ada_out, self.out):
            nn.init.zeros_(m.weight)
            nn.init.zeros_(m.bias)
        self._init_clean_from_base()

    @torch.no_grad()
    def _init_clean_from_base(self) -> None:
        """Official initialisation: big kernels start as the k1 weights tiled and divided by the
        tile count, so ``embed_kN(x) == embed_k1(avg_pool(x, ratio))`` at init."""
        base = self.embed_clean[BASE.name]
        for k in self.kernels:
            conv = self.embed_clean[k.name]
            tiles = k.ratio[0] * k.ratio[1] * k.ratio[2]
            # each k1 tap spreads over an N x N x N block (einops '(h hk)'), not a tiling of the kernel
            w = base.weight
            for dim, r in zip((2, 3, 4), k.ratio):
                w = w.repeat_interleave(r, dim=dim)
            conv.weight.copy_(w / tiles)
            conv.bias.copy_(base.bias)

    def rope(self, context: PackedContext, mode: str = "average", time_offset: bool = True
             ) -> tuple[torch.Tensor, torch.Tensor]:
        """RoPE ``cos, sin`` of every token of a step, in the order :meth:`forward` lays them out
        (image tokens, context, noisy section): each ``(N, head_dim)``. Image tokens carry no phase
        (cos 1, sin 0): neither time nor place."""
        axes, theta = self.config.rope_axes, self.config.rope_theta
        cc, cs = context.context_phases(axes, theta, mode, time_offset)
        nc, ns = context.noisy_phases(axes, theta)
        n_image = context.grid[0] * context.grid[1] if self.config.image_tokens else 0
        image_cos, image_sin = nc.new_ones(n_image, nc.shape[1]), ns.new_zeros(n_image, ns.shape[1])
        return torch.cat([image_cos, cc, nc]), torch.cat([image_sin, cs, ns])

    def forward(self, x_t: torch.Tensor, sigma: torch.Tensor, context: PackedContext,
                rope_mode: str = "average", rope_time_offset: bool = True,
                step_cache: StepCache | None = None) -> torch.Tensor:
        """Predict the clean section.

        Args:
            x_t: noisy section ``(B, C, S, h, w)``.
            sigma: flow time ``(B,)`` in [0, 1] (1 = pure noise).
            context: the packed context of the step (latents per group ``(B, C, t, h', w')``).
            rope_mode, rope_time_offset: RoPE alignment ablations (see ``PackedGroup.phases``).
            step_cache: the section's :class:`~framepack_lab.step_cache.StepCache`: the block stack
                runs only where it says so, else its last residual is reused. ``None``: plain.

        Returns:
            x0 prediction ``(B, C, S, h, w)``.
        """
        B, C, S, h, w = x_t.shape
        noisy = self.embed_noisy(x_t).flatten(2).transpose(1, 2)  # (B, S*h/2*w/2, width)
        parts = [self.embed_clean[g.embed_kernel.name](g.latents).flatten(2).transpose(1, 2) for g in context.groups]
        x = torch.cat(parts + [noisy], dim=1)
        image = self._image_tokens(context)  # (B, h/2*w/2, width) or None
        if image is not None:
            x = torch.cat([image, x], dim=1)
        # the runner prepares the tables once per section (TinyBackend.prepare_section)
        prepared = context.prepared
        prepared = prepared.rope if isinstance(prepared, TinySection) else prepared
        if isinstance(prepared, RopeTables) and prepared.key == (rope_mode, rope_time_offset):
            cos, sin = prepared.cos, prepared.sin
        else:
            cos, sin = self.rope(context, rope_mode, rope_time_offset)
        cos, sin = cos.to(x.device), sin.to(x.device)
        temb = self.time_mlp(timestep_embedding(sigma, self.config.width).to(x.device))
        if self.config.history_noise:
            level = torch.as_tensor(context.history_noise, dtype=torch.float32).expand(B)
            temb = temb + self.history_mlp(timestep_embedding(level, self.config.width).to(x.device))
        if self.config.hidden_time_max:
            hidden = torch.full((B,), min(context.hidden_time, self.config.hidden_time_max) / HIDDEN_TIME_SCALE)
            temb = temb + self.hidden_mlp(timestep_embedding(hidden, self.config.width).to(x.device))
        if step_cache is None:
            for block in self.blocks:
                x = block(x, temb, cos, sin)
        else:  # TeaCache: probe the first block's modulated input; skip the stack while it barely changes
            probe = self.blocks[0].attention_input(x, self.blocks[0].modulation(temb))
            x = step_cache.run(x, probe, lambda h, rows: self._blocks(h, temb if rows is None else temb[rows], cos, sin))
        x = x[:, -noisy.shape[1]:]
        shift, scale = self.ada_out(F.silu(temb))[:, None].chunk(2, dim=-1)
        x = self.out(self.norm_out(x) * (1 + scale) + shift)  # (B, S*h/2*w/2, C*4)
        x = x.view(B, S, h // 2, w // 2, C, 2, 2).permute(0, 4, 1, 2, 5, 3, 6)
        return x.reshape(B, C, S, h, w)

    def _image_tokens(self, context: PackedContext) -> torch.Tensor | None:
        """The first frame's RoPE-free tokens ``(B, h/2*w/2, width)`` from ``context.image``
        ``(B, C, 1, h, w)``; ``None`` for a model built without ``image_tokens``."""
        if not self.config.image_tokens:
            return None
        if context.image is None:
            raise ValueError("this checkpoint reads the first frame as image tokens (image_tokens=True), but the "
                             "step's context has no image; build contexts with framepack_lab.packing.pack")
        return self.embed_image(context.image).flatten(2).transpose(1, 2)

    def _blocks(self, x: torch.Tensor, temb: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
        """The block stack on ``x (B', N, width)`` with ``temb (B', width)``."""
        for block in self.blocks:
            x = block(x, temb, cos, sin)
        return x


# ----------------------------------------------------------------------------------- backend
@dataclass(frozen=True)
class RopeTables:
    """RoPE tables of one section for one alignment ``key = (mode, time_offset)``."""

    key: tuple[str, bool]
    cos: torch.Tensor
    sin: torch.Tensor


@dataclass(frozen=True)
class TinySection:
    """What :meth:`TinyBackend.prepare_section` computes once per section: the RoPE tables, and
    the section's step cache when ``generate(cache=...)`` asked for one."""

    rope: RopeTables
    step_cache: StepCache | None = None


@dataclass
class TinyBackend(BackendBase):
    """The embedded backend: autoencoder latents and the tiny DiT.

    Implements :class:`framepack_lab.backend.Backend`: ``encode``, ``decode``, ``velocity``,
    ``kernels``, ``features``, ``latent_size`` (and ``latent_channels``).
    """

    model: TinyFramePack
    autoencoder: TinyAutoencoder
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    rope_mode: str = "average"
    rope_time_offset: bool = True
    name: str = "tiny"
    codebooks: dict = field(default_factory=dict)  # {K: (K, C)} discrete-history codebooks ('+D')
    trail: bool = False  # its worlds draw motion trails (world.TRAIL_ECHOES): show it frames that do

    @property
    def kernels(self) -> frozenset[Kernel]:
        return frozenset(self.model.kernels)

    @property
    def features(self) -> frozenset[str]:
        """Step caching always; history noise and history guidance when the checkpoint was trained
        for them; discrete history when it ships codebooks."""
        out = {HISTORY_NOISE, HISTORY_GUIDANCE} if self.model.config.history_noise else set()
        out.add(STEP_CACHE)  # any checkpoint: step caching (generate(cache=...))
        return frozenset(out | ({DISCRETE_HISTORY} if self.codebooks else set()))

    def codebook(self, k: int) -> torch.Tensor:
        """The ``(K, C)`` codebook of the checkpoint for ``'+DK'`` schedules (on the backend's device)."""
        from ..discrete import check_k

        return self.codebooks[check_k(k, self.codebooks)].to(self.device)

    @property
    def latent_channels(self) -> int:
        return self.model.config.latent_channels

    def latent_size(self, height: int, width: int) -> tuple[int, int]:
        """Latent ``(h, w)`` of a ``height x width`` frame; frames must be multiples of 8 pixels."""
        return runtime.latent_size(height, width, TinyAutoencoder.factor, "the tiny model", "autoencoder", "64x64")

    def encode(self, frames: torch.Tensor) -> torch.Tensor:
        """Frames ``(B, T, H, W, 3)`` in [0, 1] -> latents ``(B, C, T, H/4, W/4)``."""
        self.latent_size(frames.shape[2], frames.shape[3])
        return self.autoencoder.encode(frames.to(self.device, torch.float32))

    def decode(self, latents: torch.Tensor) -> torch.Tensor:
        """Latents ``(B, C, T, h, w)`` -> frames ``(B, T, 4h, 4w, 3)`` in [0, 1]."""
        return self.autoencoder.decode(latents.to(self.device))

    def rope_alignment(self, mode: str = "average", time_offset: bool = True):
        """A context manager that runs the model with another RoPE alignment, then restores the
        current one (also when the block raises)::

            with backend.rope_alignment(mode="first", time_offset=True):
                result = generate(backend, first_frame)

        Args:
            mode: how compressed tokens get their phases, one of :data:`framepack_lab.rope.ALIGN_MODES`
                (``"average"`` is what the model was trained with).
            time_offset: False puts every history frame at time 0 (an ablation).

        Raises:
            ValueError: for an unknown ``mode`` or a ``time_offset`` that is not a bool, before
                anything is changed.
        """
        from contextlib import contextmanager

        from ..rope import ALIGN_MODES

        if mode not in ALIGN_MODES:
            raise ValueError(f"unknown RoPE alignment mode {mode!r}; choose one of {', '.join(ALIGN_MODES)}")
        if not isinstance(time_offset, bool):
            raise ValueError(f"time_offset must be True or False, got {time_offset!r}")

        @contextmanager
        def switched():
            saved = self.rope_mode, self.rope_time_offset
            self.rope_mode, self.rope_time_offset = mode, time_offset
            try:
                yield self
            finally:
                self.rope_mode, self.rope_time_offset = saved

        return switched()

    def prepare_section(self, context: PackedContext, step_cache: StepCache | None = None) -> TinySection:
        """The section's RoPE tables, computed once instead of at every sampler step, and its
        step cache (``generate(cache=...)`` makes a fresh one per section)."""
        key = (self.rope_mode, self.rope_time_offset)
        return TinySection(RopeTables(key, *self.model.rope(context, *key)), step_cache)

    @torch.no_grad()
    def x0(self, x_t: torch.Tensor, sigma: torch.Tensor, context: PackedContext) -> torch.Tensor:
        prepared = context.prepared
        cache = prepared.step_cache if isinstance(prepared, TinySection) else None
        return self.model(x_t, sigma, context, self.rope_mode, self.rope_time_offset, step_cache=cache)

    @torch.no_grad()
    def velocity(self, x_t: torch.Tensor, sigma: torch.Tensor, context: PackedContext, cond=None) -> torch.Tensor:
        """Flow velocity ``v = eps - x0 = (x_t - x0) / sigma`` for ``x_t (B, C, S, h, w)``, ``sigma (B,)``."""
        x0 = self.x0(x_t, sigma, context)
        return (x_t - x0) / sigma.clamp_min(1e-4).view(-1, 1, 1, 1, 1)


# -------------------------------------------------------------------------------- save / load
ASSETS = Path(__file__).resolve().parent.parent / "assets"


def save_tiny(path: str | Path, model: TinyFramePack, autoencoder: TinyAutoencoder, extra: dict | None = None,
              codebooks: dict | None = None) -> None:
    """Write ``model.safetensors`` (DiT + autoencoder, float32... stored as fp16; discrete-history
    codebooks ``{K: (K, C)}`` as ``codebook.K`` in float32) and ``config.json``."""
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    tensors = {f"dit.{k}": v.detach().half().contiguous() for k, v in model.state_dict().items()}
    tensors.update({f"ae.{k}": v.detach().float().contiguous() if "latent_" in k else v.detach().half().contiguous()
                    for k, v in autoencoder.state_dict().items()})
    tensors.update({f"codebook.{k}": v.detach().float().cpu().contiguous() for k, v in (codebooks or {}).items()})
    runtime.save_safetensors(tensors, path / "model.safetensors")
    (path / "config.json").write_text(json.dumps({"model": json.loads(model.config.to_json()), **(extra or {})}, indent=2))


@dataclass(frozen=True)
class TinyFiles:
    """An exported checkpoint as read from disk (:func:`read_tiny`): float32 state dicts."""

    meta: dict  # config.json: {"model": TinyConfig fields, "training_record": ...}
    config: TinyConfig
    dit: dict[str, torch.Tensor]
    ae: dict[str, torch.Tensor]
    codebooks: dict[int, torch.Tensor]  # {K: (K, C)}


def read_tiny(path: str | Path | None = None) -> TinyFiles:
    """Read a folder :func:`save_tiny` wrote (default: the shipped one) without building models.
    ``FileNotFoundError`` when it holds no checkpoint, ``ValueError`` when its ``config.json`` has
    no ``model`` section."""
    from safetensors.torch import load_file

    path = Path(path) if path is not None else ASSETS / "tiny"
    weights, cfg_file = path / "model.safetensors", path / "config.json"
    if not weights.exists() or not cfg_file.exists():
        raise FileNotFoundError(
            f"no tiny FramePack checkpoint in {path} (need model.safetensors and config.json); the "
            "package ships one in framepack_lab/assets/tiny, or train one: python -m framepack_lab.train")
    meta = json.loads(cfg_file.read_text())
    if not isinstance(meta.get("model"), dict):
        raise ValueError(f"{cfg_file} has no \"model\" section; it was not written by save_tiny (re-export the "
                         "checkpoint, or use another one)")
    state = load_file(str(weights))
    return TinyFiles(meta=meta, config=TinyConfig.from_dict(meta["model"]),
                     dit={k[4:]: v.float() for k, v in state.items() if k.startswith("dit.")},
                     ae={k[3:]: v.float() for k, v in state.items() if k.startswith("ae.")},
                     codebooks={int(k.split(".")[1]): v.float() for k, v in state.items() if k.startswith("codebook.")})


def load_tiny(path: str | Path | None = None, device: str | torch.device = "auto") -> TinyBackend:
    """Load the shipped tiny FramePack (or one saved by ``save_tiny``) as a ready backend.

    Args:
        path: a folder with ``model.safetensors`` and ``config.json``; default: the shipped one.
        device: ``"auto"`` (the default: CUDA when available, else the CPU), or ``"cpu"``,
            ``"cuda"``, ``"mps"``, ...; a device this machine lacks is refused with what to use
            instead. The same seed gives the same video on one device; CPU and GPU kernels round
            differently, so videos from different devices differ slightly.
    """
    files = read_tiny(path)
    device = runtime.resolve_device(device)
    config = files.config
    model, ae = TinyFramePack(config), TinyAutoencoder(config.latent_channels, config.ae_width)
    model.load_state_dict(files.dit)
    ae.load_state_dict(files.ae)
    trained_on = files.meta.get("training_record", {}).get("config", {})
    return TinyBackend(model.eval().to(device), ae.eval().to(device), device, codebooks=files.codebooks,
                       trail=world.config_trail(trained_on))
