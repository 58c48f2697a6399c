"""STCB forward against a hand-computed spike train; equivalent gradient and quantization grid."""

import pytest
import torch
from torch import nn

from slssnn.training.fixed_point import THRESHOLD_MAX, WEIGHT_MAX, WEIGHT_MIN
from slssnn.training.quantize import quantize_block
from slssnn.training.stcb import STCB, NeuronConfig


def dense_block(weight: list[list[float]], threshold: float) -> STCB:
    linear = nn.Linear(len(weight[0]), len(weight), bias=False)
    with torch.no_grad():
        linear.weight.copy_(torch.tensor(weight))
    return STCB(linear, NeuronConfig(), threshold)


def test_forward_matches_hand_computed_spike_train():
    block = dense_block([[1.0, -0.5]], threshold=1.0)
    # scale = 254: w_int = [254, -128] (round half to even of -63.5 -> -64), vth = 254
    q = block.quantized()
    assert q.weight.tolist() == [[254.0, -128.0]] and int(q.threshold) == 254
    spikes_in = torch.tensor([[1, 0], [1, 1], [0, 1], [1, 0]], dtype=torch.float32)[:, None]
    # accum: 254, 126, -128, 254 -> v: 254 (not > 254), 380 spike -> 0, -128, 126
    spikes, counts = block(spikes_in, spikes_in.sum(0))
    assert spikes[:, 0, 0].tolist() == [0.0, 1.0, 0.0, 0.0]
    assert counts.tolist() == [[1.0]]


def test_conv_forward_equals_per_step_dense_loop():
    torch.manual_seed(0)
    conv = nn.Conv2d(2, 3, 3, stride=2, padding=1, bias=True)
    block = STCB(conv, NeuronConfig(v_decay=300), threshold=0.2)
    spikes_in = (torch.rand(6, 4, 2, 7, 7) > 0.5).float()
    spikes, _ = block(spikes_in, spikes_in.sum(0))
    q = block.quantized()
    from slssnn.training.neuron import CubaParams, run_cuba
    accum = torch.stack([torch.nn.functional.conv2d(s, q.weight, None, 2, 1) for s in spikes_in])
    p = CubaParams(4096, 300, int(q.threshold), q.bias.to(torch.int64).view(-1, 1, 1))
    expected = run_cuba(accum.round().to(torch.int64), p).float()
    assert torch.equal(spikes, expected) and spikes.sum() > 0


def test_equivalent_gradient_is_that_of_the_clamped_rate():
    torch.manual_seed(1)
    block = dense_block(torch.randn(3, 5).tolist(), threshold=0.7)
    steps = 4
    spikes_in = (torch.rand(steps, 2, 5) > 0.4).float()
    counts_in = spikes_in.sum(0).requires_grad_(True)
    _, counts = block(spikes_in, counts_in)
    upstream = torch.randn_like(counts)
    (counts * upstream).sum().backward()
    grad_input, grad_weight = counts_in.grad.clone(), block.synapse.weight.grad.clone()

    q = block.quantized()
    w_q, th_q = q.weight / q.scale, q.threshold / q.scale
    aggregate = counts_in.detach() @ w_q.T
    inside = ((aggregate / th_q > 0) & (aggregate / th_q < steps)).float()
    expected_input = (upstream * inside / th_q) @ w_q
    expected_weight = (upstream * inside / th_q).T @ counts_in.detach()
    assert torch.allclose(grad_input, expected_input, atol=1e-6)
    assert torch.allclose(grad_weight, expected_weight, atol=1e-6)


def test_quantization_grid():
    torch.manual_seed(2)
    weight = torch.randn(8, 16) * 0.3
    q = quantize_block(weight, torch.randn(8) * 0.01, torch.tensor(0.9))
    w = q.weight
    assert torch.all(w == torch.round(w)) and torch.all(w % 2 == 0)
    assert WEIGHT_MIN <= w.min() and w.max() <= WEIGHT_MAX
    assert w.abs().max() == 254
    assert 1 <= q.threshold <= THRESHOLD_MAX and q.threshold == torch.round(q.threshold)
    assert torch.all(q.bias == torch.round(q.bias))
    # the float images are the integers divided by the scale (within float rounding)
    assert torch.allclose(q.weight_ste * q.scale, w, atol=1e-3)


def test_quantization_counts_every_clamp():
    weight = torch.tensor([[1.0, -0.5]])  # scale 254 file units per float unit
    bias = torch.tensor([0.1, 20.0, -20.0, 16.1])  # 25.4 fits; 5080, -5080, 4089.4 -> 4089
    q = quantize_block(weight, bias, torch.tensor(1e-4))  # 0.0254 rounds to 0 -> clamped to 1
    assert q.bias.tolist() == [25.0, 4095.0, -4096.0, 4089.0]
    assert int(q.bias_clamped) == 2 and int(q.threshold_clamped) == 1
    q = quantize_block(weight, None, torch.tensor(600.0))  # 152,400 > 2**17 - 1
    assert int(q.bias_clamped) == 0 and int(q.threshold_clamped) == 1
    assert int(quantize_block(weight, bias[:1], torch.tensor(1.0)).threshold_clamped) == 0


def test_input_current_clamp_is_counted():
    from slssnn.training.fixed_point import INPUT_CURRENT_MAX
    from slssnn.training.models import encode_currents

    currents, clamped = encode_currents(torch.tensor([1.0, 40000.0, -40000.0, 3.0]), 1.0)
    assert currents.tolist() == [1, INPUT_CURRENT_MAX, -INPUT_CURRENT_MAX, 3] and clamped == 2


def test_straight_through_gradient_reaches_float_weights_unchanged():
    weight = torch.randn(4, 4, requires_grad=True)
    q = quantize_block(weight, None, torch.tensor(1.0))
    q.weight_ste.sum().backward()
    assert torch.equal(weight.grad, torch.ones_like(weight))


@pytest.mark.parametrize("max_shift", [1, 2, 3])
def test_random_shift_moves_by_at_most_max_shift_pixels(max_shift):
    from slssnn.training.trainer import random_shift

    images = torch.zeros(256, 1, 8, 8)
    images[:, 0, 3, 4] = 1.0
    moved = random_shift(images, 1.0, torch.Generator().manual_seed(0), max_shift)
    positions = moved[:, 0].flatten(1).argmax(1)
    rows, cols = positions // 8 - 3, positions % 8 - 4
    assert moved.sum() == 256  # no pixel lost: 3 + 3 and 4 + 3 stay inside 8 x 8
    assert set(rows.tolist()) == set(range(-max_shift, max_shift + 1))
    assert set(cols.tolist()) == set(range(-max_shift, max_shift + 1))
    assert torch.equal(random_shift(images, 0.0, torch.Generator()), images)
    assert torch.equal(random_shift(images, 1.0, torch.Generator(), 0), images)


def test_clamp_slope_leaks_the_gradient_outside_the_window_only():
    torch.manual_seed(3)
    steps = 4
    spikes_in = (torch.rand(steps, 6, 5) > 0.4).float()
    weight = (torch.randn(3, 5) * 2).tolist()
    grads, values = [], []
    for slope in (0.0, 0.25):
        block = dense_block(weight, threshold=0.7)
        block.clamp_slope = slope
        counts_in = spikes_in.sum(0).requires_grad_(True)
        _, counts = block(spikes_in, counts_in)
        counts.sum().backward()
        grads.append(counts_in.grad.clone())
        values.append(counts.detach())
    assert torch.equal(values[0], values[1])  # forward: the true counts either way
    q = block.quantized()
    w_q, th_q = q.weight / q.scale, q.threshold / q.scale
    ratio = spikes_in.sum(0) @ w_q.T / th_q
    inside = ((ratio > 0) & (ratio < steps)).float()
    assert 0 < inside.mean() < 1  # both cases occur
    expected = ((inside + 0.25 * (1 - inside)) / th_q) @ w_q
    assert torch.allclose(grads[0], (inside / th_q) @ w_q, atol=1e-6)
    assert torch.allclose(grads[1], expected, atol=1e-6)


def test_readout_rounds_counts_before_breaking_ties():
    from slssnn.training.models import predict

    # an output count that is 2 up to one float ulp (the straight-through sum) ties with 2
    counts = torch.tensor([[2.0 - 2 ** -22, 2.0, 0.0], [0.0, 1.0, 1.0 + 2 ** -22]])
    assert predict(counts).tolist() == [0, 1]
