"""Resonate-and-fire neurons: lava-dl's recorded RF blocks and a netx RF network in Lava,
against :mod:`slssnn.training.resonator`."""

import sysconfig
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch

from slssnn.training.graded_synapse import DenseWeights, dense_sums, netx_dense_weights
from slssnn.training.resonator import (
    RF_LIMIT,
    RFParams,
    RFState,
    rf_iz_step,
    rf_params,
    rf_params_from_file,
    rf_step,
)

pytestmark = pytest.mark.timeout(300)

GTS = Path(sysconfig.get_paths()["purelib"]) / "tests/lava/lib/dl/netx/gts/complex_dense"


def run_rf(step, params: RFParams, real: torch.Tensor, imag: torch.Tensor) -> np.ndarray:
    """Spikes ``(*shape, T)`` (int) of ``step`` over the input sums ``(T, *shape)``."""
    state = RFState.zeros(tuple(real.shape[1:]))
    spikes = []
    for a_real, a_imag in zip(real, imag, strict=True):
        s, state = step(state, (a_real, a_imag), params)
        spikes.append(s)
    return torch.stack(spikes, dim=-1).numpy().astype(np.int64)


def delivered(sums: torch.Tensor) -> torch.Tensor:
    """What a Lava synapse hands its neuron: the sums of the step before (zeros first)."""
    return torch.cat([torch.zeros_like(sums[:1]), sums[:-1]])


def test_rf_iz_input_block_matches_lava_dl_ground_truth():
    """lava-dl's ``TestRFBlocks.test_input``: ComplexInput + RF_IZ, in.npy into both ports."""
    spikes_in = torch.from_numpy(np.load(GTS / "in.npy").astype(np.int64)).T  # (T, 200)
    params = rf_params(period=7, alpha=0.05, vth=1.1)
    got = run_rf(rf_iz_step, params, spikes_in, spikes_in)
    want = np.load(GTS / "current.npy").astype(np.int64)
    assert want.sum() > 1000
    assert int((got != want).sum()) == 0


def test_rf_dense_block_matches_lava_dl_ground_truth():
    """lava-dl's ``TestRFBlocks.test_dense``: ComplexDense (raw weights, exponent 0) + RF."""
    spikes_in = torch.from_numpy(np.load(GTS / "in.npy").astype(np.int64)).T  # (T, 200)
    real, imag = (DenseWeights.of(np.load(GTS / name), 0)
                  for name in ("weight_r.npy", "weight_img.npy"))
    params = rf_params(period=11, alpha=0.05, vth=25)
    got = run_rf(rf_step, params, delivered(dense_sums(spikes_in, real, graded=False)),
                 delivered(dense_sums(spikes_in, imag, graded=False)))
    want = np.load(GTS / "out.npy").astype(np.int64)
    assert want.sum() > 1000
    assert int((got != want).sum()) == 0


def write_rf_net(path: Path, rng: np.random.Generator) -> list[dict]:
    """A netx file: a shape-only input and two complex dense layers (RF_PHASE, RF_IZHIKEVICH)."""
    layers = [dict(type="RF_PHASE", n_in=12, n_out=9, sin=1100, cos=3700, vth=30),
              dict(type="RF_IZHIKEVICH", n_in=9, n_out=7, sin=900, cos=3900, vth=20)]
    with h5py.File(path, "w") as f:
        g = f.create_group("layer/0")
        g.create_dataset("type", (1,), "S10", [b"input"])
        g.create_dataset("shape", data=np.array([layers[0]["n_in"]]))
        for i, layer in enumerate(layers, 1):
            g = f.create_group(f"layer/{i}")
            g.create_dataset("type", (1,), "S10", [b"dense"])
            g.create_dataset("shape", data=np.array([layer["n_out"]]))
            for part in ("real", "imag"):
                layer[part] = 2 * rng.integers(-50, 51, size=(layer["n_out"], layer["n_in"]))
                g.create_dataset(f"weight/{part}", data=layer[part].astype(np.float32))
            g.create_dataset("neuron/type", data=layer["type"])
            g.create_dataset("neuron/sinDecay", data=layer["sin"])
            g.create_dataset("neuron/cosDecay", data=layer["cos"])
            g.create_dataset("neuron/vThMant", data=layer["vth"])
    return layers


def test_netx_rf_network_in_lava_matches_the_steps(tmp_path):
    """netx builds ComplexDense + RF / RF_IZ from the file; every spike of both layers agrees."""
    from slssnn.lava_runtime.lava_runner import run_netx_inline

    steps = 60
    rng = np.random.default_rng(7)
    layers = write_rf_net(tmp_path / "rf.net", rng)
    spikes = (rng.random((layers[0]["n_in"], steps)) < 0.2).astype(np.int32)
    lava = run_netx_inline(tmp_path / "rf.net", steps, spikes)

    x = torch.from_numpy(spikes.T.astype(np.int64))  # (T, n_in)
    for layer, step, got in zip(layers, (rf_step, rf_iz_step), lava, strict=True):
        params = rf_params_from_file(layer["sin"], layer["cos"], layer["vth"])
        real, imag = (delivered(dense_sums(x, netx_dense_weights(layer[part]), graded=False))
                      for part in ("real", "imag"))
        want = run_rf(step, params, real, imag)
        assert want.sum() > 5, f"{layer['type']} hardly spikes: the test would prove little"
        assert int((got.astype(np.int64) != want).sum()) == 0, layer["type"]
        x = torch.from_numpy(want.T)  # (T, n_out): the next layer's binary input


def test_lava_rf_processes_match_the_steps_up_to_the_clip():
    """Lava's RF and RF_IZ (fixed_pt, netx's exponents) on large random input sums that
    drive the real and imaginary parts into the 24-bit clip."""
    from slssnn.lava_runtime.lava_runner import _prepare_multiprocessing

    _prepare_multiprocessing()
    from lava.magma.core.run_conditions import RunSteps
    from lava.magma.core.run_configs import Loihi2SimCfg
    from lava.proc.io.sink import RingBuffer as Sink
    from lava.proc.io.source import RingBuffer as Source
    from lava.proc.rf.process import RF
    from lava.proc.rf_iz.process import RF_IZ

    n, steps = 16, 60
    rng = np.random.default_rng(11)
    scale = np.repeat([300, 1 << 12, 1 << 18, 1 << 20], n // 4)[:, None]
    real_in, imag_in = (rng.integers(-scale, scale + 1, size=(n, steps)).astype(np.int32)
                        for _ in range(2))
    params = dict(period=9.5, alpha=0.02, vth=40, state_exp=6, decay_bits=12)  # as netx
    procs = [RF(shape=(n,), **params), RF_IZ(shape=(n,), **params)]
    sources = [Source(data=real_in), Source(data=imag_in)]
    sinks = []
    for proc in procs:
        sources[0].s_out.connect(proc.a_real_in)
        sources[1].s_out.connect(proc.a_imag_in)
        sinks.append(Sink(shape=(n,), buffer=steps))
        proc.s_out.connect(sinks[-1].a_in)
    try:
        procs[0].run(condition=RunSteps(num_steps=steps),
                     run_cfg=Loihi2SimCfg(select_tag="fixed_pt"))
        lava = [sink.data.get().astype(np.int64) for sink in sinks]
    finally:
        procs[0].stop()

    p = rf_params(**params)
    real, imag = (torch.from_numpy(x.T.astype(np.int64)) for x in (real_in, imag_in))
    for name, step, got in zip(("RF", "RF_IZ"), (rf_step, rf_iz_step), lava, strict=True):
        want = run_rf(step, p, real, imag)
        assert want.sum() > 20, f"{name} hardly spikes"
        assert int((got != want).sum()) == 0, name
    state, clipped = RFState.zeros((n,)), False
    for a_real, a_imag in zip(real, imag, strict=True):
        _, state = rf_step(state, (a_real, a_imag), p)
        clipped |= bool((state.real.abs() == RF_LIMIT).any())
    assert clipped
