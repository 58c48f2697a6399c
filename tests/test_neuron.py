"""Golden trajectories of the CUBA step function, worked out by hand."""

import pytest
import torch

from slssnn.training.fixed_point import STATE_LIMIT
from slssnn.training.neuron import (
    CubaParams,
    CubaState,
    cuba_step,
    decay,
    run_cuba,
    run_cuba_constant,
)


def spikes_of(a_in: list[int], p: CubaParams) -> list[int]:
    return run_cuba(torch.tensor(a_in).view(-1, 1), p).view(-1).int().tolist()


def test_integrate_and_fire_strict_threshold_and_reset_to_zero():
    p = CubaParams(i_decay=4096, v_decay=0, threshold=10)
    # v: 6, 12>10 spike -> 0, 6, 12 spike -> 0, 10 (not > 10), 20 spike
    assert spikes_of([6, 6, 6, 6, 10, 10], p) == [0, 1, 0, 1, 0, 1]


def test_voltage_leak_halves_each_step():
    p = CubaParams(i_decay=4096, v_decay=2048, threshold=12)
    # internal units (x64): v1 = 640; v2 = 320 + 640 = 960 > 768 -> spike; v3 = 640
    assert spikes_of([10, 10, 10], p) == [0, 1, 0]


def test_current_decay_keeps_synaptic_memory():
    p = CubaParams(i_decay=1024, v_decay=0, threshold=5)
    # u1 = 256, v1 = 256; u2 = 256*3072/4096 = 192, v2 = 448 > 320 -> spike; u3 = 144, v3 = 144
    assert spikes_of([4, 0, 0], p) == [0, 1, 0]


def test_bias_is_shifted_by_six():
    p = CubaParams(i_decay=4096, v_decay=0, threshold=5, bias=2)
    # v grows by 2*64 per step: 128, 256, 384 > 320 -> spike
    assert spikes_of([0, 0, 0, 0], p) == [0, 0, 1, 0]


def test_decay_rounds_toward_zero_like_lava():
    x = torch.tensor([-3, 3, -4097, 4097])
    assert decay(x, 2048).tolist() == [-1, 1, -2048, 2048]


def test_current_wraps_once_past_24_bits():
    p = CubaParams(i_decay=4096, v_decay=0, threshold=100)
    state = CubaState.zeros((2,))
    _, state = cuba_step(state, torch.tensor([1 << 17, (1 << 17) + 1]), p)
    # 2**23 is kept; 2**23 + 64 wraps to -2**23 + 64
    assert state.u.tolist() == [STATE_LIMIT, -STATE_LIMIT + 64]


def test_voltage_saturates():
    p = CubaParams(i_decay=4096, v_decay=0, threshold=(1 << 17) - 1)
    state = CubaState(torch.zeros(1, dtype=torch.int64),
                      torch.tensor([-(STATE_LIMIT - 10)]))
    _, state = cuba_step(state, torch.tensor([-(1 << 16)]), p)
    assert state.v.tolist() == [-(STATE_LIMIT - 1)]


@pytest.mark.parametrize("params", [CubaParams(2048, 0, 12), CubaParams(4096, 0, 7, 2),
                                    CubaParams(1000, 300, 50, -1), CubaParams(0, 0, 4000)])
def test_held_current_trains_from_a_table_equal_run_cuba(params):
    gen = torch.Generator().manual_seed(params.threshold)
    for low, high in ((0, 17), (-40, 300), (5, 6)):
        current = torch.randint(low, high, (9, 1, 8, 8), generator=gen)
        expected = run_cuba(current.unsqueeze(0).expand(6, *current.shape), params)
        for dtype in (torch.bool, torch.float32):
            got = run_cuba_constant(current, 6, params, dtype)
            assert got.shape == (6, 9, 1, 8, 8) and got.dtype == dtype
            assert torch.equal(got, expected.to(dtype))
    per_neuron = params._replace(bias=torch.arange(64).view(1, 1, 8, 8) % 3)  # no table
    expected = run_cuba(current.unsqueeze(0).expand(6, *current.shape), per_neuron)
    assert torch.equal(run_cuba_constant(current, 6, per_neuron), expected)
