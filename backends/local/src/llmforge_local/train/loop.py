"""The training loop: accumulation, warmup + schedule, bf16 autocast, checkpoints, resume.

Determinism: the micro-batch order of each epoch is a permutation seeded by
``seed + epoch``, and a checkpoint holds the trainable weights, the optimizer and scheduler
state and the RNG state, so a run resumed from step k replays exactly what an uninterrupted
run would have done from step k.
"""

from __future__ import annotations

import dataclasses
import errno
import math
import random
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from llmforge.errors import ConfigError, LLMForgeError
from llmforge.finetune_config import TrainArgs

CKPT_FILE = "state.pt"


class CheckpointError(LLMForgeError, OSError):
    """A checkpoint could not be written; earlier checkpoints are intact."""


@dataclass(frozen=True, kw_only=True)
class LoopOptions(TrainArgs):
    """The run's :class:`~llmforge.finetune_config.TrainArgs` (whole, never copied field by
    field) plus how this loop executes them."""

    total_steps: int
    """Optimizer steps to run (resumed steps included)."""
    bf16: bool = False
    """bf16 autocast around the forward pass."""
    progress: bool = True
    """Show a progress bar."""

    @classmethod
    def of(cls, args: TrainArgs, **run: Any) -> LoopOptions:
        """``args`` as loop options: ``LoopOptions.of(cfg.training_params, total_steps=...)``."""
        return cls(**{f.name: getattr(args, f.name) for f in dataclasses.fields(TrainArgs)}, **run)

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.total_steps < 1:
            raise ConfigError(
                f"total_steps must be >= 1, got {self.total_steps}; the training table is empty?"
            )


@dataclass
class LoopResult:
    #: (step, mean loss per learned token) for every optimizer step, resumed steps included
    losses: list[tuple[int, float]] = field(default_factory=list)
    steps: int = 0
    #: tokens fed to the model (padding excluded) and tokens the loss was computed on
    tokens: int = 0
    loss_tokens: int = 0
    seconds: float = 0.0
    resumed_from: int = 0
    #: the step after which ``on_step`` asked to stop (early stopping), else None
    stopped_at: int | None = None

    @property
    def tokens_per_second(self) -> float:
        return self.tokens / self.seconds if self.seconds else 0.0


def lr_lambda(opts: LoopOptions) -> Callable[[int], float]:
    """Linear warmup over ``warmup_ratio`` of the steps, then cosine / linear decay to 0."""
    warmup = math.ceil(opts.warmup_ratio * opts.total_steps)

    def f(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        if opts.lr_scheduler == "constant":
            return 1.0
        done = (step - warmup) / max(1, opts.total_steps - warmup)
        if opts.lr_scheduler == "linear":
            return max(0.0, 1.0 - done)
        return 0.5 * (1.0 + math.cos(math.pi * min(1.0, done)))

    return f


def micro_batch(batches: list[dict], index: int, seed: int) -> dict:
    """The ``index``-th micro-batch of the endless, per-epoch shuffled stream."""
    epoch, pos = divmod(index, len(batches))
    order = list(range(len(batches)))
    random.Random(seed + epoch).shuffle(order)
    return batches[order[pos]]


def loss_sum(model: Any, batch: dict) -> tuple[Any, int]:
    """Summed cross-entropy over learned tokens, and their count.

    The LM head runs only on positions that have a label: with a 49k vocabulary the head
    is a fifth of the model's FLOPs, and prompt tokens need no logits; it runs fused with
    its cross-entropy (:mod:`llmforge_local.train.head`). Attention runs per packed
    example (:mod:`llmforge_local.train.attention`), not over the whole row.
    """
    from llmforge_local.train.attention import SEGMENTS, packed_attention, segment_layout, supports
    from llmforge_local.train.head import head_cross_entropy

    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    ids, pos = batch["input_ids"], batch["position_ids"]
    if supports(base.config, ids.shape[1]):
        groups, scatter = segment_layout(pos)
        layout = {SEGMENTS: ([(g.to(ids.device), n, s) for g, n, s in groups], scatter.to(ids.device))}
        with packed_attention(base):
            h = base.model(input_ids=ids, position_ids=pos, use_cache=False, **layout)
    else:  # transformers builds the block-diagonal (windowed) mask from the positions
        h = base.model(input_ids=ids, position_ids=pos, use_cache=False)
    h = h.last_hidden_state  # (B, T, C)
    target = batch["labels"][:, 1:]  # (B, T-1)
    keep = target != -100
    return head_cross_entropy(h[:, :-1][keep], base.lm_head, target[keep]), int(keep.sum())


def trainable_state(model: Any) -> dict:
    return {k: v.detach().clone() for k, v in model.named_parameters() if v.requires_grad}


def write_checkpoint_file(state: dict, path: Path) -> None:
    """The one place checkpoint bytes hit the disk (tests make it fail like a full disk)."""
    import torch

    torch.save(state, path)


def save_checkpoint(
    folder: Path, step: int, model: Any, optimizer: Any, scheduler: Any, result: LoopResult
) -> Path:
    """Write ``folder/step-<n>`` atomically; older checkpoints are removed only afterwards."""
    import torch

    from llmforge.fsutil import atomic_dir

    target = folder / f"step-{step:06d}"
    state = {
        "step": step,
        "weights": trainable_state(model),
        "optimizer": optimizer.state_dict(),
        "scheduler": scheduler.state_dict(),
        "torch_rng": torch.get_rng_state(),
        "losses": list(result.losses),
        "tokens": result.tokens,
        "loss_tokens": result.loss_tokens,
    }
    try:
        with atomic_dir(target) as tmp:
            write_checkpoint_file(state, tmp / CKPT_FILE)
    except OSError as exc:
        hint = "the disk is full; free space" if exc.errno == errno.ENOSPC else "check the folder"
        raise CheckpointError(
            f"could not write checkpoint {target}: {exc}; {hint} and run the "
            f"same job again to resume from the last good checkpoint"
        ) from exc
    for old in folder.glob("step-*"):
        if old != target:
            shutil.rmtree(old, ignore_errors=True)
    return target


def latest_checkpoint(folder: Path) -> Path | None:
    done = sorted(p for p in folder.glob("step-*") if (p / CKPT_FILE).exists()) if folder.exists() else []
    return done[-1] if done else None


def _fused_adamw(params: list, device: str) -> bool:
    """torch's fused AdamW (one kernel for every parameter) where it runs: fp32/bf16
    parameters on the CPU or CUDA."""
    import torch

    kinds = {"cpu", "cuda"}
    return (
        all(p.device.type in kinds and p.dtype in (torch.float32, torch.bfloat16) for p in params)
        and device.split(":")[0] in kinds
    )


def param_groups(params: list, opts: LoopOptions) -> list[dict]:
    """AdamW groups: weight decay on matrices only, and each parameter's ``lr_scale``
    (LoRA+ gives the ``B`` matrices a larger one) times the run's learning rate. The
    scheduler scales every group's rate by the same factor."""
    groups: dict[tuple[bool, float], list] = {}
    for p in params:
        groups.setdefault((p.ndim >= 2, float(getattr(p, "lr_scale", 1.0))), []).append(p)
    return [
        {
            "params": ps,
            "weight_decay": opts.weight_decay if decay else 0.0,
            "lr": opts.learning_rate * scale,
        }
        for (decay, scale), ps in sorted(groups.items(), key=lambda kv: (not kv[0][0], kv[0][1]))
    ]


def train(
    model: Any,
    batches: list[dict],
    opts: LoopOptions,
    checkpoints: Path | None = None,
    on_step: Callable[[int, float, LoopResult], None] | None = None,
    device: str = "cpu",
) -> LoopResult:
    """Run ``opts.total_steps`` optimizer steps over ``batches`` (resuming when possible);
    ``on_step(step, loss, result)`` may return True to stop after that step."""
    import torch

    if device.startswith("cpu"):
        from llmforge_local.models import flush_denormals

        flush_denormals()
    torch.manual_seed(opts.seed)
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(
        param_groups(params, opts),
        lr=opts.learning_rate,
        betas=(0.9, 0.95),
        eps=1e-8,
        **({"fused": True} if _fused_adamw(params, device) else {"foreach": True}),
    )
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_lambda(opts))
    result = LoopResult()
    start = 0
    last = latest_checkpoint(checkpoints) if checkpoints else None
    if last is not None:
        state = torch.load(last / CKPT_FILE, weights_only=False)
        named = dict(model.named_parameters())
        with torch.no_grad():
            for k, v in state["weights"].items():
                named[k].copy_(v)
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        torch.set_rng_state(state["torch_rng"])
        start = result.resumed_from = state["step"]
        result.losses = list(state["losses"])
        result.tokens, result.loss_tokens = state["tokens"], state["loss_tokens"]

    model.train()
    from llmforge_local.train.lean import lean_lora

    with lean_lora(model):
        _steps(
            model, batches, opts, start, result, optimizer, scheduler, params, checkpoints, on_step, device
        )
    result.steps = result.stopped_at or opts.total_steps
    model.eval()
    return result


def _steps(
    model: Any,
    batches: list[dict],
    opts: LoopOptions,
    start: int,
    result: LoopResult,
    optimizer: Any,
    scheduler: Any,
    params: list,
    checkpoints: Path | None,
    on_step: Callable[[int, float, LoopResult], None] | None,
    device: str,
) -> None:
    import torch
    from tqdm.auto import tqdm

    ga = opts.gradient_accumulation_steps
    bar = tqdm(
        total=opts.total_steps,
        initial=start,
        disable=not opts.progress,
        desc="train",
        unit="step",
        dynamic_ncols=True,
    )
    t0 = time.perf_counter()
    new_tokens = 0
    for step in range(start, opts.total_steps):
        micro = [micro_batch(batches, step * ga + i, opts.seed) for i in range(ga)]
        micro = [{k: v.to(device) for k, v in b.items()} for b in micro]
        n_learn = sum(int((b["labels"][:, 1:] != -100).sum()) for b in micro)
        total = 0.0
        for b in micro:
            with torch.autocast(device_type=device.split(":")[0], dtype=torch.bfloat16, enabled=opts.bf16):
                s, _ = loss_sum(model, b)
            # normalise by the learned tokens of the whole step, so every token weighs the same
            (s / max(1, n_learn)).backward()
            total += float(s.detach())
        torch.nn.utils.clip_grad_norm_(params, opts.max_grad_norm, foreach=True)
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)
        loss = total / max(1, n_learn)
        step_tokens = sum(int(b["num_tokens"]) for b in micro)  # padding excluded
        result.losses.append((step + 1, loss))
        result.tokens += step_tokens
        result.loss_tokens += n_learn
        new_tokens += step_tokens
        elapsed = time.perf_counter() - t0
        bar.set_postfix(loss=f"{loss:.4f}", tok_s=f"{new_tokens / max(elapsed, 1e-9):.0f}")
        bar.update(1)
        if on_step is not None and on_step(step + 1, loss, result):
            result.stopped_at = step + 1  # ``on_step`` returned True: stop early
            break
        if (
            checkpoints
            and opts.checkpoint_every
            and (step + 1) % opts.checkpoint_every == 0
            and step + 1 < opts.total_steps
        ):
            save_checkpoint(checkpoints, step + 1, model, optimizer, scheduler, result)
    bar.close()
    result.seconds = time.perf_counter() - t0
