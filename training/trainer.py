"""The training loop: AdamW or SGD, cosine schedule, equivalent gradient through spike counts.

``train(config)`` is the one entry point. Loss is cross-entropy (optionally
label-smoothed) on the output spike counts scaled to logits
(``counts * logit_scale / T``); evaluation uses the same quantized forward
pass, so its accuracy is the deployed accuracy.

Determinism: one seed sets the model's initialisation (torch's global
generator) and the run's own generator, which draws every epoch's
permutation and every augmentation on the CPU, whatever the device and the
number of processes. ``torch.use_deterministic_algorithms`` is on while
training. Every random state is stored in the checkpoint written at the end
of each epoch, so a resumed run on the CPU ends bit-identical to one that was
never interrupted.

Under ``torchrun`` every process runs this same loop on its shard of each
global batch, wrapped in DistributedDataParallel (:mod:`.distributed`);
``batch_size`` is the global batch, and only rank 0 writes files.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch.nn.parallel import DistributedDataParallel
from tqdm import tqdm

from slssnn.atomic import write_json, write_text
from slssnn.errors import SlssnnError

from . import distributed
from .checkpoint import capture_rng_state, load_resume_state, restore_rng_state, save_checkpoint
from .datasets import Dataset, Split, is_data_file, load_dataset, validation_split
from .heap import keep_heap
from .models import MODEL_CONFIGS, ModelConfig, SpikingNet, build_model, predict
from .zoo import check_fits, data_file_config

OPTIMIZERS = ("adamw", "sgd")
EVAL_BATCH = 256


@dataclass
class TrainConfig:
    """Options of one training run (stored in the checkpoint and train.json).

    ``batch_size`` is the global batch (all processes together); ``lr`` the
    peak learning rate, reached after ``warmup_epochs`` of linear warm-up and
    then annealed to 0 by a cosine over the remaining steps; ``momentum`` and
    ``nesterov`` apply to SGD only; ``limit_train`` keeps only the first N
    training samples (quick runs and tests). ``grad_shards`` splits each
    global batch into that many contiguous parts whose gradients are summed
    in order: under torchrun it is the number of processes (the default);
    one process given the same number reproduces a torchrun run bit for bit.
    ``dataset`` is a registered name or the path of a ``.npz`` data file; ``model``
    a :class:`ModelConfig` as a dict (the contents of ``--model MODEL.json``), or None
    for the dataset's own network (:func:`resolve_model_config`).
    ``shift_fraction`` of each batch's samples move by up to ``max_shift`` pixels
    (:func:`random_shift`).
    ``validation`` holds out a stratified :data:`VALIDATION_FRACTION` of the
    training split (seed 0), trains on the rest and evaluates on it instead
    of the test split, which is then never read: recipe choices are made so.
    """

    dataset: str = "digits"
    model: dict[str, Any] | None = None
    timesteps: int = 4
    epochs: int = 30
    batch_size: int = 32
    optimizer: str = "adamw"
    lr: float = 3e-3
    weight_decay: float = 1e-4
    momentum: float = 0.9
    nesterov: bool = False
    warmup_epochs: float = 0.0
    label_smoothing: float = 0.0
    logit_scale: float = 10.0
    shift_fraction: float = 0.5
    max_shift: int = 1
    limit_train: int | None = None
    validation: bool = False
    grad_shards: int | None = None
    seed: int = 0
    device: str = "cpu"
    data_dir: str | None = None
    out_dir: str = "runs/train"


# Execution options: taken from the command line on --resume, not from the checkpoint.
RUNTIME_FIELDS = ("out_dir", "device", "data_dir")


def random_shift(images: torch.Tensor, fraction: float, generator: torch.Generator,
                 max_shift: int = 1) -> torch.Tensor:
    """Augmentation: move a random ``fraction`` of the samples by up to ``max_shift`` pixels
    (zero fill).

    ``images``: ``(B, C, H, W)`` (or ``(B, T, C, H, W)`` event frames: every frame
    of a sample moves alike); each chosen sample gets its own offset in
    ``{-max_shift, ..., max_shift}^2`` (rows and columns drawn uniformly).
    """
    chosen = torch.nonzero(torch.rand(len(images), generator=generator) < fraction).flatten()
    if len(chosen) == 0 or max_shift == 0:
        return images
    height, width = images.shape[-2:]
    m = max_shift
    padded = F.pad(images[chosen].flatten(1, -3), (m, m, m, m))  # (b, M, H+2m, W+2m)
    offsets = torch.randint(0, 2 * m + 1, (len(chosen), 2), generator=generator)
    rows = offsets[:, :1] + torch.arange(height)  # (b, H)
    cols = offsets[:, 1:] + torch.arange(width)  # (b, W)
    picked = torch.arange(len(chosen))[:, None, None, None]
    planes = torch.arange(padded.shape[1])[None, :, None, None]
    moved = padded[picked, planes, rows[:, None, :, None], cols[:, None, None, :]]  # (b, M, H, W)
    out = images.clone()
    out[chosen] = moved.view(len(chosen), *images.shape[1:])
    return out


def epoch_batches(split: Split, config: TrainConfig, generator: torch.Generator
                  ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """One epoch's global batches as the trainer draws them: ``(images, labels)``.

    One permutation of ``split`` from ``generator``, cut into ``config.batch_size``
    batches (the last may be shorter), each augmented by :func:`random_shift` with
    the same generator as it is drawn. Images ``(b, *input_shape)`` as stored
    (uint8 pixels or 0/1 frames), labels int64 ``(b,)``; every process draws the
    same batches, so a run's draws are fixed by its seed alone.
    """
    order = torch.randperm(len(split.labels), generator=generator)
    for start in range(0, len(order), config.batch_size):
        idx = order[start:start + config.batch_size]
        yield (random_shift(split.images[idx], config.shift_fraction, generator,
                            config.max_shift), split.labels[idx])


def _device_of(model: torch.nn.Module) -> torch.device:
    return next(model.parameters()).device


def evaluate(model: SpikingNet, split: Split, batch_size: int = EVAL_BATCH) -> dict[str, Any]:
    """Quantized forward on a split (on the model's device): accuracy, predictions, counts.

    ``counts``: output spike counts ``(N, classes)`` on the CPU.
    """
    model.eval()
    device = _device_of(model)
    predictions, counts = [], []
    with torch.no_grad():
        for start in range(0, len(split.labels), batch_size):
            out, _ = model(split.images[start:start + batch_size].to(device))
            counts.append(out.cpu())
            predictions.append(predict(out).cpu())
    preds = torch.cat(predictions)
    return {
        "accuracy": float((preds == split.labels).float().mean()),
        "predictions": preds.tolist(),
        "counts": torch.cat(counts),
    }


def _test_accuracy(model: SpikingNet, split: Split, ctx: distributed.Context) -> float:
    """Accuracy on a split, each process evaluating its contiguous part."""
    part = distributed.shard(len(split.labels), ctx.rank, ctx.world_size)
    mine = Split(split.images[part], split.labels[part])
    correct = evaluate(model, mine)["accuracy"] * len(mine.labels) if len(mine.labels) else 0.0
    return round(distributed.all_sum([correct], ctx)[0]) / len(split.labels)


def _check(config: TrainConfig) -> None:
    if config.timesteps < 1:
        raise SlssnnError(f"--timesteps must be >= 1, got {config.timesteps}")
    if config.epochs < 1:
        raise SlssnnError(f"--epochs must be >= 1, got {config.epochs}")
    if config.batch_size < 1:
        raise SlssnnError(f"--batch-size must be >= 1, got {config.batch_size}")
    if config.dataset not in MODEL_CONFIGS and not is_data_file(config.dataset):
        raise SlssnnError(f"unknown dataset {config.dataset!r}; known: "
                          + ", ".join(sorted(MODEL_CONFIGS)) + ", or a data file FILE.npz")
    if config.optimizer not in OPTIMIZERS:
        raise SlssnnError(f"--optimizer {config.optimizer!r}: unknown; known: "
                          + ", ".join(OPTIMIZERS))
    if not config.lr > 0:
        raise SlssnnError(f"--lr must be > 0, got {config.lr}")
    if config.nesterov and not (config.optimizer == "sgd" and config.momentum > 0):
        raise SlssnnError("--nesterov needs --optimizer sgd and --momentum > 0")
    if not 0 <= config.warmup_epochs < config.epochs:
        raise SlssnnError(f"--warmup-epochs must be in [0, --epochs={config.epochs}), "
                          f"got {config.warmup_epochs}")
    if not 0 <= config.label_smoothing < 1:
        raise SlssnnError(f"--label-smoothing must be in [0, 1), got {config.label_smoothing}")
    if not config.logit_scale > 0:
        raise SlssnnError(f"--logit-scale must be > 0, got {config.logit_scale}")
    if config.grad_shards is not None and config.grad_shards < 1:
        raise SlssnnError(f"--grad-shards must be >= 1, got {config.grad_shards}")
    if not 0 <= config.shift_fraction <= 1:
        raise SlssnnError(f"--shift-fraction must be in [0, 1], got {config.shift_fraction}")
    if config.max_shift < 0:
        raise SlssnnError(f"--max-shift must be >= 0, got {config.max_shift}")
    if config.limit_train is not None and config.limit_train < 1:
        raise SlssnnError(f"--limit-train must be >= 1, got {config.limit_train}")
    out = Path(config.out_dir)
    if out.exists() and not out.is_dir():
        raise SlssnnError(f"output folder {out} exists and is not a folder")


def logits_of(counts: torch.Tensor, timesteps: int, logit_scale: float = 10.0) -> torch.Tensor:
    """Output spike counts ``(B, classes)`` -> logits ``counts * logit_scale / T``."""
    return counts * (logit_scale / timesteps)


def count_loss(counts: torch.Tensor, labels: torch.Tensor, timesteps: int,
               logit_scale: float = 10.0, label_smoothing: float = 0.0,
               reduction: str = "mean") -> torch.Tensor:
    """The training loss: cross-entropy on the output spike counts as logits (:func:`logits_of`).

    ``counts``: the model's first output ``(B, classes)``, whose gradient is the
    STCB equivalent gradient; ``labels``: int64 ``(B,)``.
    """
    return F.cross_entropy(logits_of(counts, timesteps, logit_scale), labels,
                           reduction=reduction, label_smoothing=label_smoothing)


def resolve_model_config(config: TrainConfig, data: Dataset | None = None) -> ModelConfig:
    """The network a run trains: ``config.model`` (a model file's contents; its T must be
    ``config.timesteps``), else the zoo's network for a registered dataset, else, for a
    data file, :func:`.zoo.data_file_config` of its data (loaded unless ``data`` is given)."""
    if config.model is not None:
        model = ModelConfig.from_dict(config.model)
        if model.timesteps != config.timesteps:
            raise SlssnnError(f"--timesteps {config.timesteps} differs from the model's "
                              f"field 'timesteps' {model.timesteps}")
        return model
    if config.dataset in MODEL_CONFIGS:
        return MODEL_CONFIGS[config.dataset](config.timesteps)
    if data is None:
        data = load_dataset(config.dataset, config.data_dir, config.timesteps)
    return data_file_config(data, config.timesteps)


def build_optimizer(model: torch.nn.Module, config: TrainConfig) -> torch.optim.Optimizer:
    """AdamW, or SGD with momentum (optionally Nesterov); weight decay on every parameter."""
    params = [p for p in model.parameters() if p.requires_grad]
    if config.optimizer == "sgd":
        return torch.optim.SGD(params, lr=config.lr, momentum=config.momentum,
                               weight_decay=config.weight_decay, nesterov=config.nesterov)
    return torch.optim.AdamW(params, lr=config.lr, weight_decay=config.weight_decay)


def build_schedule(optimizer: torch.optim.Optimizer, total_steps: int, warmup_steps: int
                   ) -> torch.optim.lr_scheduler.LRScheduler:
    """Per-step learning rate: linear warm-up over ``warmup_steps``, then cosine to 0."""
    cosine = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, total_steps - warmup_steps)
    if warmup_steps == 0:
        return cosine
    warmup = torch.optim.lr_scheduler.LinearLR(optimizer, start_factor=1 / warmup_steps,
                                               total_iters=warmup_steps)
    return torch.optim.lr_scheduler.SequentialLR(optimizer, [warmup, cosine],
                                                 milestones=[warmup_steps])


@contextmanager
def deterministic(device: torch.device) -> Iterator[None]:
    """Deterministic kernels while training (warn where an op has none); restored afterwards."""
    if device.type == "cuda":
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    saved = (torch.are_deterministic_algorithms_enabled(),
             torch.is_deterministic_algorithms_warn_only_enabled(),
             torch.backends.cudnn.benchmark)
    torch.use_deterministic_algorithms(True, warn_only=True)
    torch.backends.cudnn.benchmark = False
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(saved[0], warn_only=saved[1])
        torch.backends.cudnn.benchmark = saved[2]


def _splits(data: Dataset, config: TrainConfig) -> tuple[Split, Split]:
    """(training split, evaluation split): the test split, or with ``validation`` the held-out
    part of the training split (training then uses the rest)."""
    train, evaluation = data.train, data.test
    if config.validation:
        train, evaluation = validation_split(train)
    if config.limit_train is not None:
        train = Split(train.images[:config.limit_train], train.labels[:config.limit_train])
    return train, evaluation


class _Loop:
    """What one epoch needs: the model (maybe DDP-wrapped), optimizer, schedule, generator."""

    def __init__(self, config: TrainConfig, ctx: distributed.Context, model: SpikingNet,
                 train_split: Split, test_split: Split) -> None:
        self.config, self.ctx, self.model = config, ctx, model
        self.train_split, self.test_split = train_split, test_split
        self.net: torch.nn.Module = model
        if ctx.distributed:
            self.net = DistributedDataParallel(
                model, device_ids=[ctx.device] if ctx.device.type == "cuda" else None)
            self.net.register_comm_hook(None, distributed.ordered_sum_hook)
        self.optimizer = build_optimizer(model, config)
        self.steps_per_epoch = -(-len(train_split.labels) // config.batch_size)
        self.schedule = build_schedule(self.optimizer, config.epochs * self.steps_per_epoch,
                                       round(config.warmup_epochs * self.steps_per_epoch))
        self.generator = torch.Generator().manual_seed(config.seed)

    def step(self, images: torch.Tensor, labels: torch.Tensor) -> tuple[float, int]:
        """One optimizer step on a global batch (on the CPU); returns (summed loss, correct).

        This process back-propagates ``sum of per-sample losses / B`` of its
        shards: all of them in one process, its own under torchrun (where the
        communication hook adds the others' gradients in rank order).
        """
        config, ctx = self.config, self.ctx
        n, shards = len(labels), config.grad_shards or 1
        ranks = [ctx.rank] if ctx.distributed else range(shards)
        self.optimizer.zero_grad(set_to_none=True)
        loss_total, correct = 0.0, 0
        for rank in ranks:
            part = distributed.shard(n, rank, shards)
            x, y = images[part].to(ctx.device), labels[part].to(ctx.device)
            counts, _ = self.net(x)
            loss_sum = count_loss(counts, y, config.timesteps, config.logit_scale,
                                  config.label_smoothing, reduction="sum")
            (loss_sum / n).backward()
            loss_total += float(loss_sum.detach())
            correct += int((predict(counts.detach()) == y).sum())
        self.optimizer.step()
        self.schedule.step()
        return loss_total, correct

    def epoch(self, bar: tqdm) -> dict[str, Any]:
        """One pass over the training split; returns the epoch's metrics (all processes)."""
        config, ctx, split = self.config, self.ctx, self.train_split
        self.model.train()
        loss_sum, correct, seen, started = 0.0, 0, 0, time.perf_counter()
        bar.reset(total=self.steps_per_epoch)
        # The whole global batch is drawn and augmented identically on every process.
        for images, labels in epoch_batches(split, config, self.generator):
            batch_loss, batch_correct = self.step(images, labels)
            loss_sum, correct = loss_sum + batch_loss, correct + batch_correct
            seen += len(labels)
            bar.update()
            bar.set_postfix(loss=f"{batch_loss * ctx.world_size / len(labels):.3f}",
                            acc=f"{batch_correct * ctx.world_size / len(labels):.3f}",
                            sps=f"{seen / (time.perf_counter() - started):.0f}", refresh=False)
        seconds = time.perf_counter() - started
        loss_sum, correct = distributed.all_sum([loss_sum, correct], ctx)
        return {"loss": loss_sum / seen, "train_accuracy": round(correct) / seen,
                _eval_key(config): _test_accuracy(self.model, self.test_split, ctx),
                "samples_per_second": seen / seconds,
                "lr": self.optimizer.param_groups[0]["lr"]}

    def resume_state(self) -> dict[str, Any]:
        return {"optimizer": self.optimizer.state_dict(), "schedule": self.schedule.state_dict(),
                "rng": capture_rng_state(self.generator)}

    def restore(self, state: dict[str, Any]) -> None:
        self.model.load_state_dict(state["state_dict"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.schedule.load_state_dict(state["schedule"])
        restore_rng_state(state.get("rng", {"generator": state.get("generator")}),
                          self.generator)


def _resumed_config(state: dict[str, Any], config: TrainConfig) -> TrainConfig:
    known = {f.name for f in fields(TrainConfig)}
    stored = state["config"]
    unknown = sorted(set(stored) - known)
    if unknown:
        raise SlssnnError(f"checkpoint {Path(config.out_dir) / 'checkpoint.pt'}: unknown "
                          f"training option(s) {', '.join(unknown)} (field 'train.config')")
    runtime = {name: getattr(config, name) for name in RUNTIME_FIELDS}
    return TrainConfig(**{**stored, **runtime})


def _with_shards(config: TrainConfig, ctx: distributed.Context) -> TrainConfig:
    """Fix ``grad_shards``: the number of processes unless given; one process may emulate any."""
    if config.grad_shards is None:
        return replace(config, grad_shards=ctx.world_size)
    if ctx.distributed and config.grad_shards != ctx.world_size:
        raise SlssnnError(f"--grad-shards {config.grad_shards} (stored in the checkpoint on "
                          f"--resume) needs {config.grad_shards} torchrun processes or one, "
                          f"got {ctx.world_size}")
    return config


def _load_resume(config: TrainConfig, ctx: distributed.Context) -> dict[str, Any]:
    """Rank 0 reads the checkpoint and sends it to the others (no shared folder needed)."""
    state: Any = None
    if ctx.is_main:
        try:
            state = load_resume_state(Path(config.out_dir) / "checkpoint.pt")
        except SlssnnError as exc:
            state = exc
    state = distributed.broadcast_object(state, ctx)
    if isinstance(state, SlssnnError):
        raise state
    return state


def train(config: TrainConfig, progress: bool = True, resume: bool = False) -> dict[str, Any]:
    """Train; write checkpoint.pt (every epoch, atomically), train.csv and train.json.

    With ``resume``, continue from ``out_dir/checkpoint.pt``: its training
    config (``out_dir`` and ``device`` come from ``config``), weights,
    optimizer, schedule and random-generator state, so that the result on
    CPU is bit-identical to a run that was never interrupted. Under torchrun,
    every process calls this; rank 0 writes the files. Returns the training
    record.
    """
    _check(config)
    keep_heap()  # glibc: no page faults on the step's multi-MB tensors (training/heap.py)
    ctx = distributed.setup(config.device)
    try:
        with deterministic(ctx.device):
            return _train(config, ctx, progress, resume)
    finally:
        distributed.teardown(ctx)


def _train(config: TrainConfig, ctx: distributed.Context, progress: bool, resume: bool
           ) -> dict[str, Any]:
    out = Path(config.out_dir)
    if ctx.is_main:
        out.mkdir(parents=True, exist_ok=True)
    state = None
    if resume:
        state = _load_resume(config, ctx)
        config = _resumed_config(state, config)
        _check(config)
    config = _with_shards(config, ctx)
    torch.manual_seed(config.seed)
    data = load_dataset(config.dataset, config.data_dir, config.timesteps)
    # On --resume the network is the one stored in the checkpoint, not today's zoo entry.
    model_config = ModelConfig.from_dict(state["model_config"]) if state is not None \
        else resolve_model_config(config, data)
    model = build_model(model_config).to(ctx.device)
    check_fits(model.config, data)
    train_split, eval_split = _splits(data, config)
    loop = _Loop(config, ctx, model, train_split, eval_split)
    history: list[dict[str, Any]] = []
    if state is not None:
        loop.restore(state)
        history = state["history"]
    show = progress and ctx.is_main
    epochs = tqdm(range(len(history), config.epochs), desc="train", unit="epoch",
                  initial=len(history), total=config.epochs, disable=not show)
    batches = tqdm(desc="epoch", unit="batch", total=loop.steps_per_epoch, leave=False,
                   disable=not show)
    for epoch in epochs:
        batches.set_description(f"epoch {epoch + 1}")
        history.append({"epoch": epoch + 1, **loop.epoch(batches)})
        last = history[-1]
        epochs.set_postfix(loss=f"{last['loss']:.3f}", test=f"{last[_eval_key(config)]:.3f}",
                           sps=f"{last['samples_per_second']:.0f}")
        if ctx.is_main:
            record = {"config": asdict(config), "model_config": model.config.to_dict(),
                      "history": history}
            save_checkpoint(out / "checkpoint.pt", model, record, resume=loop.resume_state())
            write_csv(out / "train.csv", history)
    batches.close()
    result = {
        "config": asdict(config),
        "model_config": model.config.to_dict(),
        "history": history,
        **_final_accuracy(model, eval_split, config, ctx),
        "runtime": {"device": str(ctx.device), "world_size": ctx.world_size,
                    "torch": str(torch.__version__)},
    }
    if ctx.is_main:
        save_checkpoint(out / "checkpoint.pt", model, result)
        write_json(out / "train.json", result)
    return result


def _eval_key(config: TrainConfig) -> str:
    """The history's per-epoch accuracy column: on the test or the validation split."""
    return "validation_accuracy" if config.validation else "test_accuracy"


def _final_accuracy(model: SpikingNet, split: Split, config: TrainConfig,
                    ctx: distributed.Context) -> dict[str, Any]:
    """The record's accuracy keys: on the test split, or on the validation split."""
    kind = "validation" if config.validation else "test"
    return {f"{kind}_accuracy_quantized_pytorch": _test_accuracy(model, split, ctx),
            f"{kind}_samples": len(split.labels)}


def write_csv(path: Path, history: list[dict[str, Any]]) -> None:
    """Per-epoch metrics as CSV (atomic)."""
    columns = list(history[0])
    lines = [",".join(columns)] + [",".join(f"{row.get(c, '')}" for c in columns)
                                   for row in history]
    write_text(path, "\n".join(lines) + "\n")

