"""Checkpoints: the model config, its weights and the training record, in one file.

A checkpoint is a ``torch.save`` dict with ``format`` (``"slssnn-checkpoint"``),
``version``, ``model_config`` (:class:`ModelConfig` as a dict), ``state_dict``
and ``train`` (the training config and history). Loading rebuilds the model
from the stored config; the architecture never comes from the command line.
"""

from __future__ import annotations

import os
import random
from pathlib import Path
from typing import Any

import numpy as np
import torch

from slssnn.atomic import atomic_path
from slssnn.errors import SlssnnError

from .models import ModelConfig, SpikingNet, build_model

CHECKPOINT_FORMAT = "slssnn-checkpoint"
CHECKPOINT_VERSION = 1


def save_checkpoint(path: str | os.PathLike[str], model: SpikingNet,
                    train_record: dict[str, Any], resume: dict[str, Any] | None = None) -> None:
    """Write ``model`` and its training record to ``path`` atomically.

    ``resume`` (optimizer, schedule and random-generator state, see
    :func:`capture_rng_state`) marks an unfinished run that
    ``slssnn train --resume`` can continue; its tensors are stored on the CPU.
    """
    payload = {
        "format": CHECKPOINT_FORMAT,
        "version": CHECKPOINT_VERSION,
        "model_config": model.config.to_dict(),
        "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "train": train_record,
    }
    if resume is not None:
        payload["resume"] = to_cpu(resume)
    with atomic_path(path) as tmp:
        torch.save(payload, tmp)


def to_cpu(obj: Any) -> Any:
    """``obj`` (nested dicts, lists, tuples) with every tensor moved to the CPU."""
    if isinstance(obj, torch.Tensor):
        return obj.detach().cpu()
    if isinstance(obj, dict):
        return {k: to_cpu(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return type(obj)(to_cpu(v) for v in obj)
    return obj


def capture_rng_state(generator: torch.Generator) -> dict[str, Any]:
    """Every random-number state a training run can touch, in a ``weights_only``-loadable form.

    ``generator`` is the run's own generator (shuffling and augmentation); the
    others are torch's global CPU and CUDA generators, Python's ``random`` and
    NumPy's legacy global generator.
    """
    kind, keys, pos, has_gauss, gauss = np.random.get_state()
    return {
        "generator": generator.get_state(),
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_initialized() else [],
        "python": random.getstate(),
        "numpy": [kind, torch.from_numpy(keys.astype(np.int64)), pos, has_gauss, gauss],
    }


def restore_rng_state(state: dict[str, Any], generator: torch.Generator) -> None:
    """Undo :func:`capture_rng_state` (keys it did not store are left as they are)."""
    generator.set_state(state["generator"])
    if "torch" in state:
        torch.set_rng_state(state["torch"])
    if state.get("cuda") and torch.cuda.is_available() \
            and len(state["cuda"]) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(state["cuda"])
    if "python" in state:
        version, internal, gauss = state["python"]
        random.setstate((version, tuple(internal), gauss))
    if "numpy" in state:
        kind, keys, pos, has_gauss, gauss = state["numpy"]
        np.random.set_state((kind, keys.numpy().astype(np.uint32), pos, has_gauss, gauss))


def _read(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise SlssnnError(f"checkpoint {path}: no such file")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for a damaged file
        raise SlssnnError(f"checkpoint {path}: not a readable checkpoint ({exc.__class__.__name__})"
                          ) from exc
    if not isinstance(payload, dict) or payload.get("format") != CHECKPOINT_FORMAT:
        raise SlssnnError(f"checkpoint {path}: not an slssnn checkpoint (field 'format')")
    if payload.get("version") != CHECKPOINT_VERSION:
        raise SlssnnError(f"checkpoint {path}: unsupported version {payload.get('version')!r} "
                          f"(field 'version'; this slssnn reads {CHECKPOINT_VERSION})")
    return payload


def load_resume_state(path: str | os.PathLike[str]) -> dict[str, Any]:
    """What ``train(resume=True)`` needs from an unfinished run's checkpoint."""
    path = Path(path)
    payload = _read(path)
    if "resume" not in payload:
        raise SlssnnError(f"checkpoint {path}: training already finished (no field 'resume')")
    return {"config": payload["train"]["config"], "history": payload["train"]["history"],
            "model_config": payload["model_config"],
            "state_dict": payload["state_dict"], **payload["resume"]}


def load_checkpoint(path: str | os.PathLike[str]) -> tuple[SpikingNet, dict[str, Any]]:
    """Rebuild the model stored in ``path``; return ``(model in eval mode, train record)``."""
    path = Path(path)
    payload = _read(path)
    try:
        config = ModelConfig.from_dict(payload["model_config"])
    except (KeyError, SlssnnError) as exc:
        raise SlssnnError(f"checkpoint {path}: field 'model_config': {exc}") from exc
    try:
        model = build_model(config)
        model.load_state_dict(payload["state_dict"])
    except (KeyError, TypeError, RuntimeError) as exc:
        raise SlssnnError(f"checkpoint {path}: model does not match its config ({exc})"
                          .splitlines()[0]) from exc
    model.eval()
    return model, payload.get("train", {})
