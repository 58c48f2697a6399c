"""Damaged networks (ours and lava-dl's): refused with one clear error, or valid and runnable.

Over 500 variants: truncated files, flipped bytes, removed, renamed, retyped,
reshaped datasets, NaN and huge values, empty files, folders and symlinks in
place of files. None may crash, hang or raise anything but ``SlssnnError``.
"""

import shutil
import time
from pathlib import Path

import h5py
import numpy as np
import pytest
from corpus import OXFORD, TINY_NET
from netfactory import random_net

from slssnn.errors import SlssnnError
from slssnn.export.netx_reader import read_network
from slssnn.export.netx_writer import export_network
from slssnn.lava_runtime.simulate import simulate


def datasets_of(path: Path) -> list[str]:
    names: list[str] = []
    with h5py.File(path, "r") as f:
        f.visititems(lambda name, obj: names.append(name) if isinstance(obj, h5py.Dataset)
                     else None)
    return names


def structural_edits(name: str):
    """Edits of one dataset: (label, function(file))."""
    def replace(data):
        def edit(f):
            del f[name]
            f.create_dataset(name, data=data)
        return edit

    def rename(f):
        f.move(name, name + "_renamed")

    def reshape(f):
        value = np.asarray(f[name][()])
        data = value.reshape(-1)[:-1] if value.size > 1 else np.stack([value, value])
        del f[name]
        f.create_dataset(name, data=data)

    return [("remove", lambda f: f.__delitem__(name)), ("rename", rename),
            ("string", replace(np.bytes_(b"zz"))), ("nan", replace(np.float64(np.nan))),
            ("huge", replace(np.float64(1e30))), ("negative", replace(np.int64(-7))),
            ("reshape", reshape)]


def variants(source: Path, tmp: Path, rng: np.random.Generator) -> list[Path]:
    out = []
    data = source.read_bytes()
    for k in range(60):
        path = tmp / f"{source.stem}-trunc{k}.net"
        path.write_bytes(data[: int(rng.integers(0, len(data)))])
        out.append(path)
    for k in range(60):
        damaged = bytearray(data)
        for pos in rng.integers(0, len(data), size=int(rng.integers(1, 9))):
            damaged[pos] ^= int(rng.integers(1, 256))
        path = tmp / f"{source.stem}-flip{k}.net"
        path.write_bytes(bytes(damaged))
        out.append(path)
    for name in datasets_of(source):
        for label, edit in structural_edits(name):
            path = tmp / f"{source.stem}-{name.replace('/', '_')}-{label}.net"
            shutil.copy(source, path)
            with h5py.File(path, "r+") as f:
                edit(f)
            out.append(path)
    return out


def specials(source: Path, tmp: Path) -> list[Path]:
    empty = tmp / "empty.net"
    empty.write_bytes(b"")
    folder = tmp / "folder.net"
    folder.mkdir()
    good_link = tmp / "link.net"
    good_link.symlink_to(source)
    dangling = tmp / "dangling.net"
    dangling.symlink_to(tmp / "nowhere.net")
    return [empty, folder, good_link, dangling]


def drive(path: Path, steps: int = 6, backend: str = "emulator"):
    """Run a valid network with a little input; return the result."""
    net = read_network(path)
    shape = net.input_shape
    lava_shape = tuple(reversed(shape)) if len(shape) == 3 else shape
    spikes = np.ones(lava_shape + (steps,), dtype=np.int64)
    if net.layers[0].type == "input":
        spikes *= 40  # currents into the input layer
    return simulate(path, steps=steps, spikes=spikes, backend=backend, timeout=120)


@pytest.mark.timeout(600)
@pytest.mark.filterwarnings("error::RuntimeWarning")  # e.g. a huge value cast to int64
def test_damaged_networks_are_refused_or_run(tmp_path):
    ours = tmp_path / "ours.net"
    export_network(random_net(), ours)
    sources = [ours, TINY_NET, OXFORD / "network.net"]
    rng = np.random.default_rng(0)
    cases = []
    for i, source in enumerate(sources):
        folder = tmp_path / f"v{i}"
        folder.mkdir()
        cases += variants(source, folder, rng)
    cases += specials(ours, tmp_path)
    assert len(cases) >= 500
    refused, valid = 0, []
    for path in cases:
        started = time.monotonic()
        try:
            drive(path)
            valid.append(path)
        except SlssnnError as exc:
            message = str(exc)
            assert "\n" not in message and str(path) in message, message
            refused += 1
        assert time.monotonic() - started < 10, f"{path.name} took too long"
    print(f"{len(cases)} variants: {refused} refused, {len(valid)} valid and run")
    assert refused > 300 and len(valid) > 10, (refused, len(valid))
    # "valid" must mean what Lava runs: a sample of them, spike for spike
    for path in valid[:: max(1, len(valid) // 5)][:6]:
        emulated, lava = drive(path), drive(path, backend="lava")
        for a, b in zip(emulated.layers, lava.layers, strict=True):
            assert np.array_equal(a.spikes, b.spikes), f"{path.name}: {a.name}"
