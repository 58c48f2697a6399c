"""Checkpoints: the model config, its weights and the training record, in one file.

A checkpoint is a ``torch.save`` dict with ``format`` (``"slssnn-checkpoint"``),
``version``, ``model_config`` (:class:`ModelConfig` as a dict), ``state_dict``
and ``train`` (the training config and history). Loading rebuilds the model
from the stored config; the architecture never comes from the command line.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch

from slssnn.atomic import atomic_path
from slssnn.errors import SlssnnError

from .models import ModelConfig, SpikingNet, build_model

CHECKPOINT_FORMAT = "slssnn-checkpoint"
CHECKPOINT_VERSION = 1


def save_checkpoint(path: str | os.PathLike[str], model: SpikingNet,
                    train_record: dict[str, Any], resume: dict[str, Any] | None = None) -> None:
    """Write ``model`` and its training record to ``path`` atomically.

    ``resume`` (optimizer, schedule and generator state) marks an unfinished
    run that ``slssnn train --resume`` can continue.
    """
    payload = {
        "format": CHECKPOINT_FORMAT,
        "version": CHECKPOINT_VERSION,
        "model_config": model.config.to_dict(),
        "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "train": train_record,
    }
    if resume is not None:
        payload["resume"] = resume
    with atomic_path(path) as tmp:
        torch.save(payload, tmp)


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
            "state_dict": payload["state_dict"], **payload["resume"]}


def load_checkpoint(path: str | os.PathLike[str]) -> tuple[SpikingNet, dict[str, Any]]:
    """Rebuild the model stored in ``path``; return ``(model in eval mode, train record)``."""
    path = Path(path)
    payload = _read(path)
    try:
        model = build_model(ModelConfig.from_dict(payload["model_config"]))
        model.load_state_dict(payload["state_dict"])
    except (KeyError, TypeError, RuntimeError) as exc:
        raise SlssnnError(f"checkpoint {path}: model does not match its config ({exc})"
                          .splitlines()[0]) from exc
    model.eval()
    return model, payload.get("train", {})
