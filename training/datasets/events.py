"""Event streams -> T binary spike frames with polarity as 2 channels.

An event is ``(bin, x, y, polarity)``; events are counted per (frame, polarity,
pixel), optionally after mapping sensor pixels onto a coarser grid
(``x_out = x * W_out // W_sensor``), and each count becomes one spike (0/1)
by a binarising rule. The result, ``(T, 2, H, W)`` uint8, is what the input
layer receives: one frame per time step.
"""

from __future__ import annotations

import numpy as np


def bins_by_count(events: int, timesteps: int) -> np.ndarray:
    """Frame index of each of ``events`` time-ordered events: T bins of (nearly) equal count.

    Event ``i`` goes to frame ``i * T // events`` (SpikingJelly's ``split_by='number'``).
    """
    return (np.arange(events, dtype=np.int64) * timesteps) // max(events, 1)


def pool_coordinates(coord: np.ndarray, sensor: int, out: int) -> np.ndarray:
    """Sensor coordinate ``0..sensor-1`` -> pooled ``0..out-1`` (``c * out // sensor``)."""
    return (coord.astype(np.int64) * out) // sensor


def event_counts(bins: np.ndarray, x: np.ndarray, y: np.ndarray, polarity: np.ndarray,
                 timesteps: int, height: int, width: int) -> np.ndarray:
    """Events per (frame, polarity, y, x): int64 ``(T, 2, H, W)``.

    ``bins`` in 0..T-1, ``polarity`` in {0, 1}, ``x`` in 0..W-1, ``y`` in 0..H-1.
    """
    flat = ((bins * 2 + polarity.astype(np.int64)) * height + y.astype(np.int64)) * width \
        + x.astype(np.int64)
    counts = np.bincount(flat, minlength=timesteps * 2 * height * width)
    return counts.reshape(timesteps, 2, height, width)


def binarise_any(counts: np.ndarray) -> np.ndarray:
    """A pixel spikes in a frame when it received at least one event: uint8 0/1."""
    return (counts > 0).astype(np.uint8)


def binarise_above_mean(counts: np.ndarray) -> np.ndarray:
    """A pixel spikes when its count exceeds the mean count of its (frame, polarity) map.

    Pooled DVS maps are dense (most pooled pixels see some event); keeping the
    pixels above the map's mean keeps the shape and is independent of T and of
    the recording's event rate. ``counts``: ``(T, 2, H, W)``; returns uint8 0/1.
    """
    pixels = counts.shape[-1] * counts.shape[-2]
    total = counts.sum(axis=(-2, -1), keepdims=True)
    return (counts * pixels > total).astype(np.uint8)
