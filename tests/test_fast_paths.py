"""The fast paths of the training forward give exactly the integers of the plain definitions.

``run_cuba``'s integrate-and-fire path against a loop of ``cuba_step`` (the
one step function), at and past the range where it is allowed; the int8
dendritic sums against a float64 conv/linear wrapped to 24 bits.
"""

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import slssnn.training.synapse as synapse_module
from slssnn.training.fixed_point import STATE_LIMIT
from slssnn.training.neuron import (
    IF_EXACT_LIMIT,
    CubaParams,
    CubaState,
    count_spikes,
    cuba_step,
    decays_in_range,
    if_in_range,
    run_cuba,
)
from slssnn.training.synapse import dendritic_sums, sum_bounds, wrap_accum


def reference(a_in: torch.Tensor, p: CubaParams) -> torch.Tensor:
    """Spikes of a plain ``cuba_step`` loop (int64), bool ``(T, *neurons)``."""
    state = CubaState.zeros(tuple(a_in.shape[1:]))
    out = []
    for a_t in a_in.to(torch.int64):
        s, state = cuba_step(state, a_t, p)
        out.append(s)
    return torch.stack(out)


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("dtype", [torch.bool, torch.float32])
def test_integrate_and_fire_path_equals_cuba_step(seed, dtype):
    gen = torch.Generator().manual_seed(seed)
    steps = [1, 4, 8, 16][seed]
    a_in = torch.randint(-400, 600, (steps, 5, 3, 4, 4), generator=gen, dtype=torch.int32)
    bias = torch.randint(-20, 20, (3, 1, 1), generator=gen)
    p = CubaParams(4096, 0, int(torch.randint(0, 900, (1,), generator=gen)), bias)
    assert if_in_range(a_in, p)
    spikes = run_cuba(a_in, p, dtype=dtype)
    assert spikes.dtype == dtype
    assert torch.equal(spikes.bool(), reference(a_in, p))
    assert spikes.float().mean() > 0.05  # the test exercises spikes and resets


def test_channels_last_input_keeps_layout_and_values():
    a_in = torch.randint(-300, 500, (6, 2, 5, 3, 3), dtype=torch.int32)
    a_cl = a_in.permute(0, 1, 3, 4, 2).contiguous().permute(0, 1, 4, 2, 3)  # same values
    p = CubaParams(4096, 0, 250)
    assert torch.equal(run_cuba(a_cl, p), reference(a_in, p))
    assert torch.equal(run_cuba(a_in.float(), p), reference(a_in, p))


def test_at_and_past_the_range_limit_results_stay_exact():
    steps = 4
    p = CubaParams(4096, 0, 1000)
    # most negative sum exactly at the limit: fast path allowed
    edge = torch.full((steps, 3), -(IF_EXACT_LIMIT // steps), dtype=torch.int64)
    assert if_in_range(edge, p)
    assert torch.equal(run_cuba(edge, p), reference(edge, p))
    # one past: v would saturate in Lava's 24 bits; the general path must run
    past = torch.full((steps, 3), -(1 << 16), dtype=torch.int64)
    past[:, 0] = 1 << 17  # u wraps once past 2**23
    assert not if_in_range(past, p)
    assert torch.equal(run_cuba(past, p), reference(past, p))
    state = CubaState.zeros((3,))
    for a_t in past:
        _, state = cuba_step(state, a_t, p)
    assert int(state.v[1]) == -(STATE_LIMIT - 1)  # saturated: the case the fast path avoids


def test_saturation_at_the_top_keeps_the_fast_path_exact():
    """v clipped at 2**23 - 1 still exceeds vth << 6: it fires and resets like the unclipped v."""
    p = CubaParams(4096, 0, IF_EXACT_LIMIT)
    a_in = torch.full((6, 2), IF_EXACT_LIMIT, dtype=torch.int64)
    a_in[:, 1] = IF_EXACT_LIMIT // 3
    assert if_in_range(a_in, p)
    assert torch.equal(run_cuba(a_in, p), reference(a_in, p))
    _, state = cuba_step(CubaState.zeros((2,)), a_in[0], p)
    assert int(state.v[0] + a_in[1, 0] * 64) > STATE_LIMIT - 1  # Lava clips this sum
    assert run_cuba(a_in, p)[:, 0].tolist() == [False, True] * 3


def test_a_run_that_saturates_at_the_bottom_stays_exact():
    """Inputs in range, but v' sinks below -(2**17 - 1): the floor of Lava's 24-bit voltage."""
    p = CubaParams(4096, 0, 10)
    a_in = torch.full((4, 3), -50_000, dtype=torch.int64)
    a_in[:, 1] = 5  # this neuron fires; the others sink to saturation
    assert if_in_range(a_in, p)  # the float32 path, with the floor
    assert torch.equal(run_cuba(a_in, p), reference(a_in, p))
    _, state = cuba_step(CubaState.zeros((3,)), a_in[0], p)
    for a_t in a_in[1:]:
        _, state = cuba_step(state, a_t, p)
    assert int(state.v[0]) == -(STATE_LIMIT - 1)


def test_a_floored_voltage_off_the_grid_of_64_still_fires_exactly():
    """After the floor, v = -(2**23 - 1) is no multiple of 64: v / 64 = vth + 1/64 must fire."""
    p = CubaParams(4096, 0, 50)
    a_in = torch.tensor([[-IF_EXACT_LIMIT], [-IF_EXACT_LIMIT], [IF_EXACT_LIMIT], [51], [0]])
    expected = reference(a_in, p)
    assert expected.view(-1).tolist() == [False, False, False, True, False]
    assert if_in_range(a_in, p)
    assert torch.equal(run_cuba(a_in, p), expected)


def test_per_neuron_negative_sums_widen_the_range():
    """One large negative input per neuron: T * min(a) is out of range, the real v' is not."""
    steps = 16
    a_in = torch.zeros((steps, 4), dtype=torch.int32)
    a_in[torch.arange(4), torch.arange(4)] = -(IF_EXACT_LIMIT // 2)
    a_in[5:] = 300
    p = CubaParams(4096, 0, 200)
    assert if_in_range(a_in, p)
    assert torch.equal(run_cuba(a_in, p), reference(a_in, p))


@pytest.mark.parametrize("p", [CubaParams(4096, 1024, 100), CubaParams(2048, 0, 100),
                               CubaParams(1024, 512, 50, torch.tensor([3, -2]))])
def test_leaky_and_current_decay_take_the_general_path(p):
    a_in = torch.randint(-200, 400, (10, 2))
    assert not if_in_range(a_in, p)
    assert torch.equal(run_cuba(a_in, p), reference(a_in, p))


@pytest.mark.parametrize("i_decay,v_decay", [(2048, 0), (4096, 512), (1, 4095), (1024, 2048),
                                              (3000, 4096)])
@pytest.mark.parametrize("dtype", [torch.bool, torch.float32])
def test_decays_path_equals_cuba_step(i_decay, v_decay, dtype):
    gen = torch.Generator().manual_seed(i_decay + v_decay)
    a_in = torch.randint(-60, 90, (12, 4, 3, 5), generator=gen)
    p = CubaParams(i_decay, v_decay, 40, torch.randint(-9, 9, (3, 1), generator=gen))
    assert decays_in_range(a_in, p)
    spikes = run_cuba(a_in, p, dtype=dtype)
    assert spikes.dtype == dtype
    assert torch.equal(spikes.bool(), reference(a_in, p))
    assert spikes.float().mean() > 0.02


def test_decays_path_refuses_what_could_saturate():
    p = CubaParams(2048, 256, 100)
    a_in = torch.full((16, 2), -600)
    a_in[::3] = 700
    assert not decays_in_range(a_in, p)  # 16 * 16 * 700 > 2**17 - 1
    assert torch.equal(run_cuba(a_in, p), reference(a_in, p))


def reference_sums(spikes: torch.Tensor, weight: torch.Tensor, synapse: nn.Module) -> torch.Tensor:
    x, w = spikes.double(), weight.double()
    if isinstance(synapse, nn.Conv2d):
        c = synapse
        return wrap_accum(F.conv2d(x, w, None, c.stride, c.padding, c.dilation, c.groups))
    return F.linear(x, w).to(torch.int64)


@pytest.fixture(params=["int8", "float"])
def products(request, monkeypatch):
    """Both exact product paths of ``dendritic_sums``, whichever this CPU runs faster."""
    if request.param == "int8" and not synapse_module._int_mm_available():
        pytest.skip("this torch has no CPU torch._int_mm")
    monkeypatch.setattr(synapse_module, "int_mm_is_faster", lambda: request.param == "int8")
    return request.param


def grid_weights(shape: tuple[int, ...], gen: torch.Generator) -> torch.Tensor:
    return torch.randint(-128, 128, shape, generator=gen).float() * 2  # even, [-256, 254]


@pytest.mark.parametrize("geometry", [dict(stride=1, padding=1), dict(stride=2, padding=1),
                                      dict(stride=1, padding=2, dilation=2),
                                      dict(stride=(2, 1), padding=(0, 1)),
                                      dict(stride=1, padding=1, groups=2)])
@pytest.mark.parametrize("in_channels", [1, 6])
def test_conv_sums_equal_the_float64_conv(geometry, in_channels, products):
    if geometry.get("groups", 1) > 1 and in_channels == 1:
        pytest.skip("groups need several channels")
    gen = torch.Generator().manual_seed(in_channels)
    conv = nn.Conv2d(in_channels, 8, 3, bias=False, **geometry)
    weight = grid_weights(tuple(conv.weight.shape), gen)
    spikes = (torch.rand((7, in_channels, 9, 8), generator=gen) < 0.4).float()
    sums = dendritic_sums(spikes, weight, conv)
    expected = reference_sums(spikes, weight, conv)
    assert torch.equal(sums.to(torch.int64), expected)
    low, high = sum_bounds(weight)
    assert low <= int(expected.min()) and int(expected.max()) <= high


def test_channels_last_spikes_and_dense_sums(products):
    gen = torch.Generator().manual_seed(1)
    conv = nn.Conv2d(40, 16, 3, stride=2, padding=1, bias=False)
    weight = grid_weights(tuple(conv.weight.shape), gen)
    spikes = (torch.rand((5, 40, 6, 6), generator=gen) < 0.3).float()
    as_cl = spikes.contiguous(memory_format=torch.channels_last)
    assert torch.equal(dendritic_sums(as_cl, weight, conv).to(torch.int64),
                       reference_sums(spikes, weight, conv))
    dense = nn.Linear(300, 12, bias=False)
    weight = grid_weights((12, 300), gen)
    spikes = (torch.rand((9, 300), generator=gen) < 0.3).float()
    assert torch.equal(dendritic_sums(spikes, weight, dense).to(torch.int64),
                       reference_sums(spikes, weight, dense))


def test_the_product_path_is_the_one_chosen(products):
    conv = nn.Conv2d(40, 16, 3, padding=1, bias=False)  # fan-in 360: int8 where chosen
    gen = torch.Generator().manual_seed(2)
    sums = dendritic_sums((torch.rand((2, 40, 5, 5), generator=gen) < 0.3).float(),
                          grid_weights(tuple(conv.weight.shape), gen), conv, on_grid=True)
    assert sums.dtype == (torch.int32 if products == "int8" else torch.float32)


def test_a_fan_in_too_wide_for_float32_takes_int8_products(products):
    if not synapse_module._int_mm_available():
        pytest.skip("this torch has no CPU torch._int_mm")
    fan_in = 140_001  # 254 * fan_in = 2 (mod 4), above 2**25: no float32 holds it
    assert fan_in > synapse_module.FLOAT32_EXACT_FAN_IN
    dense = nn.Linear(fan_in, 2, bias=False)
    weight = torch.full((2, fan_in), 254.0)
    spikes = torch.ones((3, fan_in))
    spikes[1, :9] = 0.0
    sums = dendritic_sums(spikes, weight, dense, on_grid=True)
    assert sums.dtype == torch.int32  # whichever product is faster on this CPU
    assert torch.equal(sums.to(torch.int64), reference_sums(spikes, weight, dense))
    assert int(sums[0, 0]) == 254 * fan_in and int(sums[1, 0]) == 254 * (fan_in - 9)


def test_the_faster_product_is_measured_once():
    synapse_module.int_mm_is_faster.cache_clear()
    first = synapse_module.int_mm_is_faster()
    assert isinstance(first, bool) and synapse_module.int_mm_is_faster() is first
    assert synapse_module.int_mm_is_faster.cache_info().hits >= 1
    if not synapse_module._int_mm_available():
        assert first is False


def test_weights_off_the_grid_use_the_float_path():
    dense = nn.Linear(64, 4, bias=False)
    weight = torch.arange(-128, 128).float().view(4, 64)  # odd integers: w / 2 is not int8
    spikes = torch.ones((3, 64))
    assert torch.equal(dendritic_sums(spikes, weight, dense).to(torch.int64),
                       reference_sums(spikes, weight, dense))


def test_wide_fan_in_wraps_to_24_bits(products):
    conv = nn.Conv2d(4096, 1, 3, padding=1, bias=False)  # fan-in 36,864: 254 * fan-in > 2**23
    weight = torch.full(tuple(conv.weight.shape), 254.0)
    spikes = torch.ones((1, 4096, 3, 3))
    sums = dendritic_sums(spikes, weight, conv).to(torch.int64)
    assert torch.equal(sums, reference_sums(spikes, weight, conv))
    assert int(sums[0, 0, 1, 1]) == 254 * 36864 - (1 << 24)  # wrapped once


def test_spike_counts_in_memory_order_equal_sum():
    spikes = (torch.rand((6, 3, 5, 4, 7)) < 0.4).float()
    for layout in (spikes, spikes.permute(0, 1, 3, 4, 2).contiguous().permute(0, 1, 4, 2, 3),
                   spikes.flatten(2)):
        counts = count_spikes(layout)
        assert counts.shape == layout.shape[1:]
        assert torch.equal(counts, layout.sum(0))


def test_keep_heap_applies_on_glibc_and_is_harmless_elsewhere():
    import platform
    import sys

    from slssnn.training.heap import keep_heap

    said = keep_heap()
    if sys.platform.startswith("linux") and platform.libc_ver()[0] == "glibc":
        assert said == "glibc heap kept (mallopt)"
    else:
        assert said.startswith("default allocator")
    x = torch.ones(1 << 20)  # allocation still works
    assert float(x.sum()) == 1 << 20


def test_small_fan_in_conv_sums_by_window_pattern_table():
    from slssnn.training.synapse import _table_path

    gen = torch.Generator().manual_seed(3)
    conv = nn.Conv2d(2, 5, (2, 3), stride=(1, 2), padding=(1, 0), bias=False)  # fan-in 12
    conv_small = nn.Conv2d(2, 5, (1, 3), stride=(1, 2), padding=(1, 0), bias=False)  # 6
    for synapse in (conv, conv_small):
        weight = torch.randint(-4095, 4096, tuple(synapse.weight.shape), generator=gen).float()
        spikes = (torch.rand((6, 2, 7, 9), generator=gen) < 0.5).float()
        assert _table_path(spikes, weight, synapse) == (synapse is conv_small)
        sums = dendritic_sums(spikes, weight, synapse)
        assert sums.dtype == torch.float32
        assert torch.equal(sums.to(torch.int64), reference_sums(spikes, weight, synapse))
