"""The STCB's fast equivalent gradient against its definition through autograd.

``STCB.forward`` takes ``A = f(c_in) + T b`` from the integer per-step sums
and backpropagates with ``_EquivalentGradient``; ``STCB._equivalent_counts``
is the definition (the float aggregate ``f(c_in; weight_ste)``, clamp and
autograd), which the forward falls back to where Lava's 24-bit wrap may act.
Both must give the true spike counts and the same gradients (up to float
summation order) for every block option.
"""

import pytest
import torch
from torch import nn

from slssnn.training import stcb as stcb_module
from slssnn.training.models import ModelConfig, build_model
from slssnn.training.stcb import STCB, NeuronConfig


def run(block: STCB, spikes_in: torch.Tensor, counts_in: torch.Tensor, upstream: torch.Tensor,
        definition: bool, monkeypatch) -> tuple[torch.Tensor, torch.Tensor, dict]:
    """Forward, backward of ``sum(counts * upstream)``; spikes, counts and every gradient."""
    with monkeypatch.context() as patch:
        if definition:  # as if the sums could wrap: the forward takes the definition
            patch.setattr(stcb_module, "sums_unwrapped", lambda _synapse: False)
        block.zero_grad(set_to_none=True)
        counts_in = counts_in.detach().clone().requires_grad_(counts_in.requires_grad)
        spikes, counts = block(spikes_in, counts_in)
        (counts * upstream).sum().backward()
    grads = {name: p.grad.clone() for name, p in block.named_parameters() if p.grad is not None}
    if counts_in.requires_grad:
        grads["counts_in"] = counts_in.grad.clone()
    return spikes, counts.detach(), grads


CONV = dict(stride=2, padding=1)


def exact_ratio_at_clamp_edge(block: STCB, spikes_in: torch.Tensor) -> torch.Tensor:
    """Neurons whose ``A / theta`` is exactly 0 or T (bool, the counts' shape).

    There the fast form (integer ``A``) is inside the clamp, as the definition
    is in exact arithmetic, while the float aggregate of the definition may
    round to either side: such neurons get no upstream gradient in the tests.
    """
    steps = spikes_in.shape[0]
    q = block.quantized()
    x, w = spikes_in.sum(0).double(), q.weight.double()
    drive = block._apply_synapse(x, w)  # exact integers in float64
    if q.bias is not None:
        drive = drive + steps * q.bias.double().view(block._bias_shape())
    return (drive == 0) | (drive == steps * float(q.threshold))


@pytest.mark.parametrize("case", [
    dict(conv=True, bias=True, slope=0.0),
    dict(conv=True, bias=False, slope=0.1, first=True),
    dict(conv=True, bias=True, slope=0.0, batch_norm=True),
    dict(conv=False, bias=True, slope=0.25),
    dict(conv=False, bias=False, slope=0.0, train_threshold=False),
    dict(conv=False, bias=True, slope=0.0, v_decay=600, batch_norm=True),
    dict(conv=True, bias=False, slope=0.0, in_channels=1, first=True),
])
def test_fast_gradient_equals_the_definition(case, monkeypatch):
    gen = torch.Generator().manual_seed(len(str(case)))
    torch.manual_seed(len(str(case)))
    steps, batch = 6, 5
    channels = case.get("in_channels", 40)
    if case["conv"]:
        synapse = nn.Conv2d(channels, 12, 3, bias=case["bias"], **CONV)
        shape = (channels, 7, 6)
    else:
        synapse = nn.Linear(90, 14, bias=case["bias"])
        shape = (90,)
    with torch.no_grad():
        synapse.weight.mul_(3.0)
        if case["bias"]:
            synapse.bias.normal_(0.0, 0.2)
    block = STCB(synapse, NeuronConfig(v_decay=case.get("v_decay", 0)), threshold=0.4,
                 train_threshold=case.get("train_threshold", True),
                 batch_norm=case.get("batch_norm", False), clamp_slope=case["slope"])
    block.train()
    spikes_in = (torch.rand((steps, batch, *shape), generator=gen) < 0.35).float()
    counts_in = spikes_in.sum(0).requires_grad_(not case.get("first", False))
    upstream = torch.randn(block(spikes_in, spikes_in.sum(0))[1].shape, generator=gen)
    upstream[exact_ratio_at_clamp_edge(block, spikes_in)] = 0.0
    state = {k: v.clone() for k, v in block.state_dict().items()}
    spikes, counts, grads = run(block, spikes_in, counts_in, upstream, False, monkeypatch)
    block.load_state_dict(state)  # the same batch-norm running statistics
    ref_spikes, ref_counts, ref_grads = run(block, spikes_in, counts_in, upstream, True,
                                            monkeypatch)
    assert torch.equal(spikes, ref_spikes)
    assert torch.equal(counts, spikes.sum(0))  # exactly the spike counts
    assert torch.equal(counts.round(), ref_counts.round())
    assert 0 < counts.mean() < steps  # some neurons fire, not all saturate
    assert grads.keys() == ref_grads.keys()
    assert ("counts_in" in grads) != case.get("first", False)
    assert ("threshold" in grads) == case.get("train_threshold", True)
    for name, grad in grads.items():
        ref = ref_grads[name]
        scale = float(ref.abs().max())
        assert scale > 0, name
        assert torch.allclose(grad, ref, rtol=1e-4, atol=1e-5 * scale), name


def test_no_graph_without_gradients():
    block = STCB(nn.Linear(30, 6, bias=False), NeuronConfig(), threshold=0.3)
    spikes_in = (torch.rand((4, 3, 30)) < 0.5).float()
    with torch.no_grad():
        spikes, counts = block(spikes_in, spikes_in.sum(0))
    assert counts.grad_fn is None and torch.equal(counts, spikes.sum(0))


def test_whole_network_gradients_equal_the_definition(monkeypatch):
    """Input layer, two convs, flatten, two dense blocks: every gradient as the definition's.

    Non-negative weights, no bias and odd T and thresholds make ``A / theta``
    never exactly T (``A`` is even) and exactly 0 only where every term is 0,
    so the definition's float aggregate cannot land on the other side of a
    clamp edge than the integer one (see :func:`exact_ratio_at_clamp_edge`).
    """
    steps = 5
    config = ModelConfig(
        name="tiny", input_shape=(1, 8, 8), num_classes=10, timesteps=steps,
        layers=[{"type": "conv", "out_channels": 16, "kernel": 3, "stride": 1, "padding": 1},
                {"type": "conv", "out_channels": 32, "kernel": 3, "stride": 2, "padding": 1},
                {"type": "flatten"}, {"type": "dense", "out_features": 40},
                {"type": "dense", "out_features": 10, "clamp_slope": 0.02}],
        input_threshold=6)
    images = torch.randint(0, 17, (12, 1, 8, 8), generator=torch.Generator().manual_seed(0))
    labels = torch.arange(12) % 10
    results = []
    for definition in (False, True):
        torch.manual_seed(0)
        model = build_model(config)
        for load, block in zip((1.5, 1.2, 2.0, 2.0), model.blocks, strict=True):
            with torch.no_grad():  # vThMant odd, about load * fan_in * 127 / 4
                weight = block.synapse.weight.abs_()
                odd = 2 * int(load * weight[0].numel() * 127 / 4) + 1
                block.threshold.fill_(odd * float(weight.max()) / 254)
            assert int(block.quantized().threshold) % 2 == 1
        with monkeypatch.context() as patch:
            if definition:
                patch.setattr(stcb_module, "sums_unwrapped", lambda _synapse: False)
            counts, trace = model(images.float())
            torch.nn.functional.cross_entropy(counts, labels).backward()
        results.append((trace, counts.detach(), {n: p.grad for n, p in model.named_parameters()}))
    (trace, counts, grads), (ref_trace, ref_counts, ref_grads) = results
    assert all(torch.equal(a, b) for a, b in zip(trace, ref_trace, strict=True))
    assert torch.equal(counts, trace[-1].sum(0))
    rates = [float(spikes.mean()) for spikes in trace[1:]]
    assert all(0.05 < rate < 0.6 for rate in rates), rates
    for name, grad in grads.items():
        assert grad is not None and ref_grads[name] is not None, name
        scale = float(ref_grads[name].abs().max())
        assert scale > 0, name
        assert torch.allclose(grad, ref_grads[name], rtol=1e-4, atol=1e-5 * scale), name
