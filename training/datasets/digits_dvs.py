"""digits-dvs: event streams synthesised from the digits by moving them past a DVS model.

Each 8x8 digit (intensity ``I = (pixel + 1) / 17``, background 1/17) sits in
the middle of a 10x10 sensor and makes three straight saccades around a
triangle (:data:`SACCADE_PATH`, in pixels), each sampled at
:data:`STEPS_PER_SACCADE` positions with sub-pixel bilinear interpolation.
Every sensor pixel is a DVS pixel with a reference log intensity ``ref``
(initially that of the first position). At each position, with
``d = log I - ref``, it emits ``floor(|d| / C)`` events of polarity ON
(channel 0, ``d > 0``) or OFF (channel 1) and moves ``ref`` by that many
``C`` towards ``log I`` (contrast threshold :data:`CONTRAST`). Position ``k``
(1..K) falls into frame ``(k - 1) * T // K``; a pixel spikes in a frame when
it emitted at least one event of that polarity there. Deterministic: no noise,
no randomness. The split is the digits split (stratified, seed 0, 20% test).
"""

from __future__ import annotations

import functools

import numpy as np

from .common import EVENTS, Dataset, stratified_split
from .digits import digits_arrays
from .events import binarise_any

SENSOR = 10
MARGIN = 1
CONTRAST = 0.15
STEPS_PER_SACCADE = 12
SACCADE_PATH = ((-0.75, 0.5), (0.75, 0.5), (0.0, -0.8), (-0.75, 0.5))
"""Triangle of (dx, dy) offsets in pixels, start = end: three saccades in three directions."""


def _shift_axis(x: np.ndarray, offset: float, axis: int) -> np.ndarray:
    """Move ``x`` by ``offset`` pixels along ``axis`` (bilinear, zero fill)."""
    whole = int(np.floor(offset))
    frac = offset - whole

    def roll(arr: np.ndarray, s: int) -> np.ndarray:
        out = np.zeros_like(arr)
        n = arr.shape[axis]
        src = [slice(None)] * arr.ndim
        dst = [slice(None)] * arr.ndim
        src[axis] = slice(max(0, -s), min(n, n - s))
        dst[axis] = slice(max(0, s), min(n, n + s))
        out[tuple(dst)] = arr[tuple(src)]
        return out

    return (1 - frac) * roll(x, whole) + frac * roll(x, whole + 1)


def sensor_images(images: np.ndarray, dx: float, dy: float) -> np.ndarray:
    """Digits ``(N, 8, 8)`` (0..16) moved by (dx, dy) on the sensor: intensity ``(N, 10, 10)``."""
    canvas = np.zeros((len(images), SENSOR, SENSOR))
    canvas[:, MARGIN:MARGIN + 8, MARGIN:MARGIN + 8] = images
    moved = _shift_axis(_shift_axis(canvas, dy, 1), dx, 2)
    return (moved + 1.0) / 17.0


def positions() -> list[tuple[float, float]]:
    """The (dx, dy) offsets visited: start, then K = 3 x STEPS_PER_SACCADE positions."""
    out = [SACCADE_PATH[0]]
    for (x0, y0), (x1, y1) in zip(SACCADE_PATH[:-1], SACCADE_PATH[1:], strict=True):
        for k in range(1, STEPS_PER_SACCADE + 1):
            f = k / STEPS_PER_SACCADE
            out.append((x0 + f * (x1 - x0), y0 + f * (y1 - y0)))
    return out


def synthesise_events(images: np.ndarray) -> np.ndarray:
    """DVS events per position, pixel and polarity: int64 ``(K, N, 2, 10, 10)``.

    ``images``: ``(N, 8, 8)`` digits (0..16).
    """
    path = positions()
    ref = np.log(sensor_images(images, *path[0]))
    events = []
    for dx, dy in path[1:]:
        diff = np.log(sensor_images(images, dx, dy)) - ref
        n = np.floor(np.abs(diff) / CONTRAST)
        ref = ref + np.sign(diff) * n * CONTRAST
        events.append(np.stack([np.where(diff > 0, n, 0), np.where(diff < 0, n, 0)], axis=1))
    return np.stack(events).astype(np.int64)  # (K, N, 2, H, W)


def event_frames(images: np.ndarray, timesteps: int) -> np.ndarray:
    """Binary frames uint8 ``(N, T, 2, 10, 10)`` of the digits ``(N, 8, 8)``."""
    events = synthesise_events(images)
    steps = events.shape[0]
    frame_of = (np.arange(steps) * timesteps) // steps  # position k+1 -> frame k*T//K
    counts = np.zeros((timesteps,) + events.shape[1:], dtype=np.int64)
    np.add.at(counts, frame_of, events)
    return binarise_any(counts).transpose(1, 0, 2, 3, 4)  # (T, N, ...) -> (N, T, 2, H, W)


@functools.lru_cache(maxsize=4)
def _all_frames(timesteps: int) -> tuple[np.ndarray, np.ndarray]:
    """Frames of all 1,797 digits and their labels (cached, read-only)."""
    images, labels = digits_arrays()
    frames = np.ascontiguousarray(event_frames(images[:, 0], timesteps))
    frames.setflags(write=False)
    return frames, labels


def load_digits_dvs(timesteps: int) -> Dataset:
    """digits-dvs binned into ``timesteps`` frames, on the digits split."""
    train, test = stratified_split(*_all_frames(timesteps))
    return Dataset(name="digits-dvs", train=train, test=test,
                   class_names=[str(d) for d in range(10)], input_shape=(2, SENSOR, SENSOR),
                   kind=EVENTS)
