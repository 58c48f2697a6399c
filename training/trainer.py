"""The training loop: AdamW, cosine schedule, equivalent gradient through spike counts.

``train(config)`` is the one entry point. Loss is cross-entropy on the output
spike counts scaled to logits (``counts * logit_scale / T``); evaluation uses
the same quantized forward pass, so its accuracy is the deployed accuracy.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from tqdm import tqdm

from slssnn.atomic import write_json, write_text
from slssnn.errors import SlssnnError

from .checkpoint import load_resume_state, save_checkpoint
from .datasets import Dataset, Split, load_dataset
from .models import MODEL_CONFIGS, SpikingNet, build_model, predict


@dataclass
class TrainConfig:
    """Options of one training run (stored in the checkpoint and train.json)."""

    dataset: str = "digits"
    timesteps: int = 4
    epochs: int = 30
    batch_size: int = 32
    lr: float = 3e-3
    weight_decay: float = 1e-4
    logit_scale: float = 10.0
    shift_fraction: float = 0.5
    seed: int = 0
    out_dir: str = "runs/train"


def random_shift(images: torch.Tensor, fraction: float, generator: torch.Generator
                 ) -> torch.Tensor:
    """Augmentation: move a random ``fraction`` of the images by up to one pixel (zero fill).

    ``images``: ``(B, C, H, W)``; each chosen image gets its own offset in {-1, 0, 1}^2.
    """
    chosen = torch.nonzero(torch.rand(len(images), generator=generator) < fraction).flatten()
    if len(chosen) == 0:
        return images
    height, width = images.shape[2:]
    padded = F.pad(images[chosen], (1, 1, 1, 1))  # (b, C, H+2, W+2)
    offsets = torch.randint(0, 3, (len(chosen), 2), generator=generator)
    out = images.clone()
    for k, (row, (dy, dx)) in enumerate(zip(chosen.tolist(), offsets.tolist(), strict=True)):
        out[row] = padded[k, :, dy:dy + height, dx:dx + width]
    return out


def evaluate(model: SpikingNet, split: Split, batch_size: int = 256) -> dict[str, Any]:
    """Quantized forward on a split: accuracy, predictions and output counts."""
    model.eval()
    predictions, counts = [], []
    with torch.no_grad():
        for start in range(0, len(split.labels), batch_size):
            out, _ = model(split.images[start:start + batch_size])
            counts.append(out)
            predictions.append(predict(out))
    preds = torch.cat(predictions)
    return {
        "accuracy": float((preds == split.labels).float().mean()),
        "predictions": preds.tolist(),
        "counts": torch.cat(counts),
    }


def _check(config: TrainConfig) -> None:
    if config.timesteps < 1:
        raise SlssnnError(f"--timesteps must be >= 1, got {config.timesteps}")
    if config.epochs < 1:
        raise SlssnnError(f"--epochs must be >= 1, got {config.epochs}")
    if config.batch_size < 1:
        raise SlssnnError(f"--batch-size must be >= 1, got {config.batch_size}")
    if config.dataset not in MODEL_CONFIGS:
        raise SlssnnError(f"unknown dataset {config.dataset!r}; known: "
                          + ", ".join(sorted(MODEL_CONFIGS)))
    out = Path(config.out_dir)
    if out.exists() and not out.is_dir():
        raise SlssnnError(f"output folder {out} exists and is not a folder")


def _epoch(model: SpikingNet, data: Dataset, config: TrainConfig,
           optimizer: torch.optim.Optimizer, schedule: Any,
           generator: torch.Generator) -> dict[str, Any]:
    """One pass over the training split; returns the epoch's metrics."""
    model.train()
    order = torch.randperm(len(data.train.labels), generator=generator)
    loss_sum, correct, started = 0.0, 0, time.perf_counter()
    for start in range(0, len(order), config.batch_size):
        idx = order[start:start + config.batch_size]
        images, labels = data.train.images[idx], data.train.labels[idx]
        images = random_shift(images, config.shift_fraction, generator)
        counts, _ = model(images)
        loss = F.cross_entropy(counts * (config.logit_scale / config.timesteps), labels)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        schedule.step()
        loss_sum += loss.item() * len(idx)
        correct += int((predict(counts.detach()) == labels).sum())
    seconds = time.perf_counter() - started
    return {"loss": loss_sum / len(order), "train_accuracy": correct / len(order),
            "test_accuracy": evaluate(model, data.test)["accuracy"],
            "samples_per_second": len(order) / seconds}


def train(config: TrainConfig, progress: bool = True, resume: bool = False) -> dict[str, Any]:
    """Train; write checkpoint.pt (every epoch, atomically) and train.json into ``out_dir``.

    With ``resume``, continue from ``out_dir/checkpoint.pt``: its training
    config, weights, optimizer, schedule and random-generator state, so that
    the result on CPU is bit-identical to a run that was never interrupted.
    Returns the training record.
    """
    _check(config)
    out = Path(config.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    state = None
    if resume:
        state = load_resume_state(out / "checkpoint.pt")
        config = TrainConfig(**{**state["config"], "out_dir": config.out_dir})
    torch.manual_seed(config.seed)
    data = load_dataset(config.dataset)
    model = build_model(MODEL_CONFIGS[config.dataset](config.timesteps))
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.lr,
                                  weight_decay=config.weight_decay)
    steps_per_epoch = -(-len(data.train.labels) // config.batch_size)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer,
                                                          config.epochs * steps_per_epoch)
    generator = torch.Generator().manual_seed(config.seed)
    history: list[dict[str, Any]] = []
    if state is not None:
        model.load_state_dict(state["state_dict"])
        optimizer.load_state_dict(state["optimizer"])
        schedule.load_state_dict(state["schedule"])
        generator.set_state(state["generator"])
        history = state["history"]
    bar = tqdm(range(len(history), config.epochs), desc="train", unit="epoch",
               initial=len(history), total=config.epochs, disable=not progress)
    for epoch in bar:
        history.append({"epoch": epoch + 1,
                        **_epoch(model, data, config, optimizer, schedule, generator)})
        last = history[-1]
        bar.set_postfix(loss=f"{last['loss']:.3f}", test=f"{last['test_accuracy']:.3f}",
                        sps=f"{last['samples_per_second']:.0f}")
        record = {"config": asdict(config), "model_config": model.config.to_dict(),
                  "history": history}
        save_checkpoint(out / "checkpoint.pt", model, record, resume={
            "optimizer": optimizer.state_dict(), "schedule": schedule.state_dict(),
            "generator": generator.get_state()})
        write_csv(out / "train.csv", history)
    final = evaluate(model, data.test)
    result = {
        "config": asdict(config),
        "model_config": model.config.to_dict(),
        "history": history,
        "test_accuracy_quantized_pytorch": final["accuracy"],
        "test_samples": len(data.test.labels),
    }
    save_checkpoint(out / "checkpoint.pt", model, result)
    write_json(out / "train.json", result)
    return result


def write_csv(path: Path, history: list[dict[str, Any]]) -> None:
    """Per-epoch metrics as CSV (atomic)."""
    columns = list(history[0])
    lines = [",".join(columns)] + [",".join(f"{row[c]}" for c in columns) for row in history]
    write_text(path, "\n".join(lines) + "\n")
