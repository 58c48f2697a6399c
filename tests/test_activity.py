"""Synaptic-operation counts against a brute-force enumeration of every synapse."""

import itertools

import numpy as np
import pytest

from slssnn.errors import SlssnnError
from slssnn.export.netx_reader import CubaNeuron, LayerSpec
from slssnn.lava_runtime.activity import ann_macs, conv_fanout, layer_activity

NEURON = CubaNeuron(4096, 0, 10)


def conv_spec(in_shape, out_c, k, stride, pad, dil, groups):
    c, h, w = in_shape
    ho = (h + 2 * pad[0] - dil[0] * (k[0] - 1) - 1) // stride[0] + 1
    wo = (w + 2 * pad[1] - dil[1] * (k[1] - 1) - 1) // stride[1] + 1
    weight = np.ones((out_c, c // groups, *k), dtype=np.int64)
    return LayerSpec(1, "conv", (out_c, ho, wo), NEURON, weight, None, stride, pad, dil, groups)


def brute_force_fanout(spec, in_shape):
    c_in, h, w = in_shape
    out_c, in_per_group, kh, kw = spec.weight.shape
    fan = np.zeros(in_shape, dtype=np.int64)
    for o, y, x, i, dy, dx in itertools.product(range(out_c), range(spec.shape[1]),
                                                range(spec.shape[2]), range(in_per_group),
                                                range(kh), range(kw)):
        group = o // (out_c // spec.groups)
        ci = group * in_per_group + i
        yy = y * spec.stride[0] - spec.padding[0] + dy * spec.dilation[0]
        xx = x * spec.stride[1] - spec.padding[1] + dx * spec.dilation[1]
        if 0 <= yy < h and 0 <= xx < w:
            fan[ci, yy, xx] += 1
    return fan


@pytest.mark.parametrize("in_shape,out_c,k,stride,pad,dil,groups", [
    ((1, 8, 8), 16, (3, 3), (1, 1), (1, 1), (1, 1), 1),
    ((16, 8, 8), 4, (3, 3), (2, 2), (1, 1), (1, 1), 1),
    ((4, 9, 7), 6, (3, 2), (2, 3), (0, 1), (1, 1), 2),
    ((2, 10, 10), 4, (3, 3), (3, 2), (2, 0), (2, 1), 1),
    ((3, 5, 6), 3, (5, 5), (1, 1), (0, 0), (1, 1), 3),
])
def test_conv_fanout_matches_brute_force(in_shape, out_c, k, stride, pad, dil, groups):
    spec = conv_spec(in_shape, out_c, k, stride, pad, dil, groups)
    assert np.array_equal(conv_fanout(spec, in_shape), brute_force_fanout(spec, in_shape))


def test_layer_activity_totals():
    rng = np.random.default_rng(0)
    inp = LayerSpec(0, "input", (2, 6, 6), NEURON)
    conv = conv_spec((2, 6, 6), 3, (3, 3), (2, 2), (1, 1), (1, 1), 1)
    dense = LayerSpec(2, "dense", (4,), NEURON, np.ones((4, 27), dtype=np.int64),
                      flatten_before=True)
    counts = [rng.integers(0, 5, s.shape) for s in (inp, conv, dense)]
    records = layer_activity([inp, conv, dense], counts, timesteps=4, samples=3)
    assert [r["spikes"] for r in records] == [int(c.sum()) for c in counts]
    assert records[0]["synops"] == 0
    assert records[1]["synops"] == int((counts[0] * brute_force_fanout(conv, (2, 6, 6))).sum())
    assert records[2]["synops"] == int(counts[1].sum()) * 4
    assert [r["neuron_updates"] for r in records] == [72 * 12, 27 * 12, 4 * 12]
    assert records[1]["ann_macs"] == ann_macs(conv) == 27 * 2 * 9
    assert records[2]["ann_macs"] == 4 * 27


def test_metadata_twin_counts_replace_the_layer_s_own_and_bad_ones_are_refused():
    inp = LayerSpec(0, "input", (2, 6, 6), NEURON)
    conv = conv_spec((2, 6, 6), 3, (3, 3), (2, 2), (1, 1), (1, 1), 1)
    counts = [np.ones(s.shape, dtype=np.int64) for s in (inp, conv)]
    records = layer_activity([inp, conv], counts, 4, 1, metadata={"ann_macs": {"1:conv": 100}})
    assert [r["ann_macs"] for r in records] == [0, 100]
    for bad in ({"7:conv": 1}, {"1:conv": -1}, {"1:conv": 1.5}, [1]):
        with pytest.raises(SlssnnError, match="network metadata 'ann_macs'"):
            layer_activity([inp, conv], counts, 4, 1, metadata={"ann_macs": bad})
