"""slssnn's own Lava process models (lava_runtime/lava_procs): the exact conv, the counters.

The counters and the conv run inside a real Lava run (through lava-dl's netx)
and are compared with Lava's own RingBuffer sinks and scipy conv.
"""

import numpy as np
import pytest
import torch
from netfactory import random_images, random_net

from slssnn.export.netx_writer import export_network
from slssnn.lava_runtime.lava_runner import run_lava, run_lava_counts

pytestmark = pytest.mark.timeout(300)


@pytest.mark.parametrize("case", [
    # X, Y, C, K, kernel, stride, padding, dilation, groups, graded
    (12, 12, 1, 8, 3, 1, 1, 1, 1, False),
    (14, 14, 16, 8, 3, 2, 1, 1, 1, False),
    (13, 11, 8, 12, 3, 2, 2, 2, 4, False),
    (9, 10, 6, 4, 2, 3, 0, 1, 2, True),
    (7, 7, 4, 6, 5, 1, 2, 1, 1, False),
])
def test_exact_conv_equals_lava_scipy_conv_bit_for_bit(case):
    from lava.proc.conv.utils import conv_scipy

    from slssnn.lava_runtime.lava_procs.conv import conv_exact

    x, y, c, k, size, stride, pad, dil, groups, graded = case
    rng = np.random.default_rng(sum(case))
    spikes = rng.integers(-(1 << 20), 1 << 20, (x, y, c)) if graded \
        else rng.integers(0, 2, (x, y, c)).astype(bool)
    weight = rng.integers(-127, 128, (k, size, size, c // groups)).astype(np.int32) * 2
    args = ((size, size), (stride, stride), (pad, pad), (dil, dil), groups)
    want = conv_scipy(spikes, weight, *args).astype(weight.dtype)  # lava's utils.conv, no torch
    got = conv_exact(spikes, weight, *args)
    assert got.dtype == want.dtype and np.array_equal(got, want)


def test_counted_run_equals_every_spike_read_back(tmp_path):
    """The counters (exact conv) against Lava's sinks (Lava's scipy conv): same run, same counts,
    every layer spiking, bias and leak included; the output counted per sample."""
    model = random_net(timesteps=5, bias=True, v_decay=512)
    path = tmp_path / "conv.net"
    export_network(model, path)
    currents = model.input_layer.currents(random_images(6)).numpy()
    spikes = run_lava(path, currents, model.timesteps)
    counts = run_lava_counts(path, currents, model.timesteps, chunk_steps=7)
    assert np.array_equal(counts.output, spikes[-1].sum(1, dtype=np.int64).reshape(6, -1))
    assert len(counts.per_neuron) == len(spikes)
    for i, (got, raster) in enumerate(zip(counts.per_neuron, spikes, strict=True)):
        want = raster.sum(axis=(0, 1), dtype=np.int64)
        assert got.shape == want.shape and np.array_equal(got, want), f"layer {i}"
        assert want.sum() > 0, f"layer {i} never spiked: the test would prove little"
    with torch.no_grad():
        out, _ = model(random_images(6))
    assert np.array_equal(counts.output, out.round().long().numpy())
