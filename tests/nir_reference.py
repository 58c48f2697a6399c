"""A float reference evaluator of a NIR graph, for the tests (not the code under test).

It steps the graph node by node in float64 with the forward-Euler equations of
docs/nir.md (dt seconds per step), independently of slssnn's converter:

- every node's output at step t is a function of its inputs at step t (NIR's
  instantaneous edges); an edge that closes a loop (found by depth-first search
  from the Input: it points back to a node still on the path) carries its
  source's output of step t - 1 (at the first step: the source applied to zero,
  an Affine's bias): the convention of
  snnTorch's RLeaky/RSynaptic and nirtorch's executor for the NIR paper's
  ``lif1.lif -> lif1.w_rec -> lif1.lif``;
- several edges into one node add up;
- Conv2d is ``torch.nn.functional.conv2d``; SumPool2d sums each window (an
  AvgPool2d averages it, padding counted) through ``unfold``; Flatten
  flattens all axes; Affine, Linear, Scale as written;
- IF, LIF, CubaLIF, LI as in docs/nir.md: ``v > v_threshold`` fires and sets
  ``v = v_reset``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F


def _kind(node: Any) -> str:
    return type(node).__name__


def _order(graph: Any) -> tuple[list[str], set[tuple[str, str]]]:
    """Nodes in evaluation order and the loop-closing (one-step-late) edges."""
    succ: dict[str, list[str]] = {}
    for a, b in graph.edges:
        succ.setdefault(a, []).append(b)
    start = next(n for n, v in graph.nodes.items() if _kind(v) == "Input")
    back, state = set(), {}

    def visit(n: str) -> None:
        state[n] = "open"
        for m in succ.get(n, []):
            if state.get(m) == "open":
                back.add((n, m))
            elif m not in state:
                visit(m)
        state[n] = "done"

    visit(start)
    forward = [(a, b) for a, b in graph.edges if (a, b) not in back]
    indeg = {n: 0 for n in graph.nodes}
    for _, b in forward:
        indeg[b] += 1
    order, ready = [], [start]
    while ready:
        n = ready.pop()
        order.append(n)
        for a, b in forward:
            if a == n:
                indeg[b] -= 1
                if indeg[b] == 0:
                    ready.append(b)
    return order, back


def _t(x: Any) -> torch.Tensor:
    return torch.as_tensor(np.asarray(x, dtype=np.float64))


def _pool(node: Any, x: torch.Tensor, average: bool) -> torch.Tensor:
    k = tuple(int(v) for v in np.broadcast_to(node.kernel_size, (2,)))
    s = tuple(int(v) for v in np.broadcast_to(node.stride, (2,)))
    p = tuple(int(v) for v in np.broadcast_to(node.padding, (2,)))
    c, h, w = x.shape[1:]
    cols = F.unfold(x, k, padding=p, stride=s)  # (B, C*kH*kW, L)
    sums = cols.view(x.shape[0], c, k[0] * k[1], -1).sum(2)
    out_h = (h + 2 * p[0] - k[0]) // s[0] + 1
    out_w = (w + 2 * p[1] - k[1]) // s[1] + 1
    out = sums.view(x.shape[0], c, out_h, out_w)
    return out / (k[0] * k[1]) if average else out


def _linear(node: Any, x: torch.Tensor) -> torch.Tensor:
    kind = _kind(node)
    if kind == "Conv2d":
        pad = node.padding
        pad = pad if isinstance(pad, str) else tuple(int(v) for v in np.broadcast_to(pad, (2,)))
        bias = None if getattr(node, "bias", None) is None else _t(node.bias).reshape(-1)
        return F.conv2d(x, _t(node.weight), bias,
                        tuple(int(v) for v in np.broadcast_to(node.stride, (2,))), pad,
                        tuple(int(v) for v in np.broadcast_to(node.dilation, (2,))),
                        int(np.asarray(node.groups).reshape(-1)[0]))
    if kind in ("SumPool2d", "AvgPool2d"):
        return _pool(node, x, kind == "AvgPool2d")
    if kind == "Flatten":
        return x.reshape(x.shape[0], -1)
    if kind == "Scale":
        return x * _t(node.scale)
    y = x @ _t(node.weight).T
    return y + _t(node.bias) if kind == "Affine" else y


def _neuron(node: Any, state: dict[str, torch.Tensor], x: torch.Tensor, dt: float
            ) -> torch.Tensor:
    kind = _kind(node)
    if kind == "LI":
        ratio = dt / _t(node.tau)
        state["v"] = (1 - ratio) * state.get("v", 0 * x) + ratio * (_t(node.v_leak)
                                                                    + _t(node.r) * x)
        return state["v"]
    v = state.get("v", 0 * x)
    if kind == "IF":
        v = v + _t(node.r) * x
    elif kind == "LIF":
        ratio = dt / _t(node.tau)
        v = (1 - ratio) * v + ratio * (_t(node.v_leak) + _t(node.r) * x)
    else:  # CubaLIF
        rs, rm = dt / _t(node.tau_syn), dt / _t(node.tau_mem)
        state["i"] = (1 - rs) * state.get("i", 0 * x) + rs * _t(node.w_in) * x
        v = (1 - rm) * v + rm * (_t(node.v_leak) + _t(node.r) * state["i"])
    z = (v > _t(node.v_threshold)).to(torch.float64)
    state["v"] = torch.where(z > 0, _t(node.v_reset) + 0 * v, v)
    return z


NEURONS = ("IF", "LIF", "CubaLIF", "LI")


def run_graph(graph: Any, x: np.ndarray, dt: float = 1e-4) -> dict[str, np.ndarray]:
    """Every node's output per step: ``x`` is ``(B, T, *input_shape)``; values ``(B, T, ...)``."""
    order, back = _order(graph)
    into: dict[str, list[str]] = {}
    for a, b in graph.edges:
        into.setdefault(b, []).append(a)
    states: dict[str, dict[str, torch.Tensor]] = {n: {} for n in graph.nodes}
    prev: dict[str, torch.Tensor] = {}
    outputs: dict[str, list[torch.Tensor]] = {n: [] for n in graph.nodes}
    x = _t(x)
    for t in range(x.shape[1]):
        now: dict[str, torch.Tensor] = {}
        for n in order:
            node = graph.nodes[n]
            if _kind(node) == "Input":
                now[n] = x[:, t]
                outputs[n].append(now[n])
                continue
            parts = []
            for a in into.get(n, []):
                if (a, n) in back:
                    if a in prev:
                        parts.append(prev[a])
                    elif _kind(graph.nodes[a]) == "Affine":  # step -1: its input was zero
                        parts.append(_t(graph.nodes[a].bias).expand(x.shape[0], -1))
                else:
                    parts.append(now[a])
            total = parts[0]
            for p in parts[1:]:
                total = total + p
            kind = _kind(node)
            if kind in NEURONS:
                now[n] = _neuron(node, states[n], total, dt)
            elif kind == "Output":
                now[n] = total
            else:
                now[n] = _linear(node, total)
            outputs[n].append(now[n])
        prev = now
    return {n: torch.stack(v, dim=1).numpy() for n, v in outputs.items() if v}
