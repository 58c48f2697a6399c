"""The one mapping between netx's integer CUBA neurons and NIR's neuron nodes.

NIR (the Neuromorphic Intermediate Representation, package ``nir``) describes
neurons by continuous-time ODEs; a simulator discretises them with a time
step ``dt``. slssnn uses forward Euler with ``dt`` seconds per netx step (the
convention of snnTorch's ``export_to_nir``/``import_from_nir``; default
:data:`DEFAULT_DT`, stored in the graph's metadata as ``dt``)::

    CubaLIF   I[t] = (1 - dt/tau_syn) I[t-1] + (dt/tau_syn) w_in x[t]
              v[t] = (1 - dt/tau_mem) v[t-1] + (dt/tau_mem) (v_leak + r I[t])
    LIF       v[t] = (1 - dt/tau) v[t-1] + (dt/tau) (v_leak + r x[t])
    IF        v[t] = v[t-1] + r x[t]         (per-step gain r, as snnTorch and sinabs write it)
    all       z[t] = v[t] > v_threshold;  v[t] = v_reset where z[t]
    LI        y[t] = (1 - dt/tau) y[t-1] + (dt/tau) (v_leak + r x[t])   (no spikes: y is output)

Loihi's CUBA neuron (``training/neuron.py``) in file units is::

    u[t] = (1 - iDecay/4096) u[t-1] + a[t]
    v[t] = (1 - vDecay/4096) v[t-1] + u[t] + bias;   z = v > vThMant;  v = 0 where z

so the two agree exactly when ``dt/tau_syn = iDecay/4096``,
``dt/tau_mem = vDecay/4096``, the input gain ``(dt/tau_syn) w_in (dt/tau_mem) r``
(LIF: ``(dt/tau) r``; IF: ``r``) is 1, ``v_reset = 0`` and
``(dt/tau_mem) v_leak = bias``; values are in file units (one unit = one
weight integer = one ``vThMant`` step). Lava additionally rounds each decay
product toward zero at 1/64 of a unit: NIR's float semantics does not.

A decaying current into a non-leaky voltage (``iDecay < 4096``, ``vDecay =
0``) has no CubaLIF (``tau_mem = r = inf``); it is the pair ``LI -> IF``: the
LI's output ``y[t]`` is ``u[t]`` when ``dt/tau = iDecay/4096`` and its gain
``(dt/tau) r`` is 1 (the current is updated first, from this step's input,
then the voltage reads it in the same step, as in Loihi), and the IF's
``v[t] = v[t-1] + r y[t]`` is the voltage with ``r = 1``. NIR's IF has no
leak term, so such a layer carries no bias.

:func:`neuron_to_nir` writes these parameters (the integers are recovered by
rounding, exactly); :func:`neuron_from_nir` reads any IF, LIF or CubaLIF
node back into integer decays plus per-neuron float gain, threshold and bias,
which :mod:`.nir_import` quantizes together with the synapse;
:func:`neuron_pair_from_nir` reads an LI followed by a spiking node.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from slssnn.errors import SlssnnError
from slssnn.training.fixed_point import DECAY_UNITY

DEFAULT_DT = 1e-4
"""Seconds per netx time step assumed for a NIR graph without ``dt`` metadata (snnTorch's)."""
DT_KEY = "dt"
"""Graph metadata key holding the time step in seconds."""
NEURON_NODES = ("IF", "LIF", "CubaLIF")
"""NIR neuron node types that map onto Loihi's CUBA neuron."""
DECAY_TOLERANCE = 1e-6
"""A decay within this many 1/4096 units of an integer counts as exact."""


@dataclass
class NeuronFloat:
    """A NIR neuron node in netx terms, before quantization.

    ``i_decay``/``v_decay`` are integers in 1/4096 per step (``*_decay_float``
    the unrounded values); ``gain``, ``threshold`` and ``leak_bias`` are
    float arrays shaped like the layer: per step, ``v`` (or ``u``) receives
    ``gain * (synapse output)``, and ``v`` receives ``leak_bias``; the neuron
    fires at ``v > threshold``. ``filters_input``: the current ``u`` decays
    (``iDecay < 4096``), so a synaptic bias would be filtered.
    """

    kind: str
    i_decay: int
    v_decay: int
    i_decay_float: float
    v_decay_float: float
    gain: np.ndarray
    threshold: np.ndarray
    leak_bias: np.ndarray

    @property
    def filters_input(self) -> bool:
        return self.i_decay < DECAY_UNITY


def _full(value: float, shape: tuple[int, ...]) -> np.ndarray:
    return np.full(shape, float(value), dtype=np.float64)


def neuron_to_nir(i_decay: int, v_decay: int, threshold: int, bias: np.ndarray | None,
                  shape: tuple[int, ...], dt: float, where: str):
    """NIR nodes for a netx CUBA neuron layer of ``shape``; and the bias its synapse carries.

    Returns ``([(role, node), ...], synapse_bias)``: one ``("neuron", IF | LIF
    | CubaLIF)``, or for a decaying current into a non-leaky voltage
    (``iDecay < 4096``, ``vDecay = 0``) the pair ``("current", LI)``,
    ``("neuron", IF)``: the LI is the current ``u`` (``tau = 4096 dt / iDecay``,
    gain ``(dt/tau) r = 1``), the IF the voltage (``r = 1``). ``bias`` (per
    neuron, file units, or None) goes on the synapse for IF/LIF (``iDecay =
    4096``: the current does not filter it) and into ``v_leak`` for CubaLIF.
    Raises ``SlssnnError`` for what NIR cannot express.
    """
    import nir

    th = _full(threshold, shape)
    zero = np.zeros(shape)
    if i_decay == DECAY_UNITY:
        if v_decay == 0:
            return [("neuron", nir.IF(r=_full(1.0, shape), v_threshold=th, v_reset=zero))], bias
        tau = dt * DECAY_UNITY / v_decay
        return [("neuron", nir.LIF(tau=_full(tau, shape), r=_full(tau / dt, shape),
                                   v_leak=zero, v_threshold=th, v_reset=zero))], bias
    if i_decay == 0:
        raise SlssnnError(f"{where}: iDecay 0 (a current that never decays) has no NIR "
                          "CubaLIF time constant")
    tau_syn = dt * DECAY_UNITY / i_decay
    if v_decay == 0:
        if bias is not None and np.any(np.asarray(bias) != 0):
            raise SlssnnError(f"{where}: a bias into a non-leaky voltage behind a decaying "
                              f"current (iDecay {i_decay}, vDecay 0) has no NIR equivalent: "
                              "NIR's IF has no leak term to carry it, and an LI or synapse "
                              "bias would be filtered by the current")
        current = nir.LI(tau=_full(tau_syn, shape), r=_full(tau_syn / dt, shape), v_leak=zero)
        spiking = nir.IF(r=_full(1.0, shape), v_threshold=th, v_reset=zero)
        return [("current", current), ("neuron", spiking)], bias
    tau_mem = dt * DECAY_UNITY / v_decay
    leak = zero if bias is None else np.broadcast_to(
        np.asarray(bias, dtype=np.float64).reshape((-1,) + (1,) * (len(shape) - 1)),
        shape) * DECAY_UNITY / v_decay
    node = nir.CubaLIF(tau_syn=_full(tau_syn, shape), tau_mem=_full(tau_mem, shape),
                       r=_full(tau_mem / dt, shape), v_leak=np.array(leak, dtype=np.float64),
                       v_threshold=th, v_reset=zero, w_in=_full(tau_syn / dt, shape))
    return [("neuron", node)], None


def _decay(ratio: np.ndarray, name: str, where: str) -> tuple[int, float]:
    """Integer decay (1/4096 per step) of a layer from its ``dt/tau`` values."""
    values = np.asarray(ratio, dtype=np.float64) * DECAY_UNITY
    if not np.all(np.isfinite(values)):
        raise SlssnnError(f"{where}: {name} is not finite")
    if values.size and np.ptp(values) > DECAY_TOLERANCE:
        raise SlssnnError(f"{where}: {name} differs between neurons; Loihi has one decay per "
                          "layer")
    value = float(values.reshape(-1)[0]) if values.size else 0.0
    if not -DECAY_TOLERANCE <= value <= DECAY_UNITY + DECAY_TOLERANCE:
        raise SlssnnError(f"{where}: {name} = {value / DECAY_UNITY:g} per step is outside "
                          "[0, 1] (a time constant shorter than dt)")
    return int(np.clip(np.round(value), 0, DECAY_UNITY)), value


def _array(node, field: str) -> np.ndarray:
    return np.asarray(getattr(node, field), dtype=np.float64)


def _tau_ratio(tau: np.ndarray, dt: float) -> np.ndarray:
    with np.errstate(divide="ignore"):
        return np.where(np.isinf(tau), 0.0, dt / tau)


RESET_KEYS = ("reset", "reset_mode", "reset_mechanism", "reset_method")
"""Node metadata keys an exporter may use to record a reset mode NIR 1.0 has no field for."""


def _check_reset_mode(node, where: str) -> None:
    """Refuse a node whose metadata records a reset other than to ``v_reset`` (e.g. subtract).

    NIR 1.0 neurons reset to ``v_reset``; a subtractive reset (``v -= v_threshold``,
    snnTorch's default) has no field, so an exporter can only say so in the node's
    metadata. Loihi's CUBA neuron resets to zero and cannot subtract.
    """
    meta = getattr(node, "metadata", None) or {}
    for key in RESET_KEYS:
        value = meta.get(key)
        if value is None:
            continue
        text = value.decode() if isinstance(value, bytes | np.bytes_) else str(value)
        if text.strip().lower() not in ("zero", "to_zero", "reset_to_zero"):
            raise SlssnnError(f"{where}: metadata '{key}' = {text!r}: Loihi's CUBA neuron "
                              "resets the voltage to zero; a subtractive reset cannot be run "
                              "on it (retrain with reset to zero)")


def neuron_from_nir(node, name: str, dt: float) -> NeuronFloat:
    """Read a NIR IF, LIF or CubaLIF node as Loihi decays plus float gain/threshold/bias.

    Raises ``SlssnnError`` naming ``name`` for a non-zero ``v_reset`` (Loihi
    resets to 0) or parameters Loihi's CUBA neuron cannot run.
    """
    kind = type(node).__name__
    where = f"NIR node '{name}' ({kind})"
    if kind not in NEURON_NODES:
        raise SlssnnError(f"{where}: not a neuron type slssnn maps; known: "
                          + ", ".join(NEURON_NODES))
    _check_reset_mode(node, where)
    threshold = _array(node, "v_threshold")
    reset = _array(node, "v_reset") if getattr(node, "v_reset", None) is not None else 0.0
    if np.any(reset != 0):
        raise SlssnnError(f"{where}: v_reset must be 0 (Loihi's CUBA neuron resets the voltage "
                          "to zero)")
    shape = threshold.shape
    r = np.broadcast_to(_array(node, "r"), shape)
    if kind == "IF":
        zero = np.zeros(shape)
        return NeuronFloat(kind, DECAY_UNITY, 0, float(DECAY_UNITY), 0.0, r.copy(), threshold,
                           zero)
    tau_name = "tau" if kind == "LIF" else "tau_mem"
    tau_mem = np.broadcast_to(_array(node, tau_name), shape)
    ratio_mem = _tau_ratio(tau_mem, dt)
    v_decay, v_float = _decay(ratio_mem, f"dt/{tau_name}", where)
    # snnTorch writes beta = 1 as tau = r = inf: an IF neuron with gain 1
    unit_inf = np.isinf(tau_mem) & np.isinf(r)
    with np.errstate(invalid="ignore"):
        gain_mem = np.where(unit_inf, 1.0, ratio_mem * r)
    leak_bias = ratio_mem * np.broadcast_to(_array(node, "v_leak"), shape)
    if kind == "LIF":
        return NeuronFloat(kind, DECAY_UNITY, v_decay, float(DECAY_UNITY), v_float, gain_mem,
                           threshold, leak_bias)
    ratio_syn = _tau_ratio(np.broadcast_to(_array(node, "tau_syn"), shape), dt)
    i_decay, i_float = _decay(ratio_syn, "dt/tau_syn", where)
    if i_decay == 0:
        raise SlssnnError(f"{where}: tau_syn = inf (a current that never decays); netx needs "
                          "iDecay >= 1")
    gain = gain_mem * ratio_syn * np.broadcast_to(_array(node, "w_in"), shape)
    return NeuronFloat(kind, i_decay, v_decay, i_float, v_float, gain, threshold, leak_bias)


def neuron_pair_from_nir(current, current_name: str, node, name: str, dt: float
                         ) -> NeuronFloat:
    """Read an ``LI`` node followed by a spiking node (IF, LIF or CubaLIF) as one CUBA layer.

    The LI is Loihi's current ``u`` (``iDecay = 4096 dt / tau``), the spiking
    node its voltage; the gain is the LI's ``(dt/tau) r`` times the spiking
    node's. Raises ``SlssnnError`` naming the LI when the spiking node filters
    its input again (a CubaLIF with ``tau_syn > dt``: Loihi has one current),
    for a never-decaying LI (``tau = inf``), parameters of another shape, and
    a ``v_leak`` the decaying current would filter (Loihi adds bias to the
    voltage: write it as the spiking node's ``v_leak``).
    """
    where = f"NIR node '{current_name}' ({type(current).__name__})"
    spiking = neuron_from_nir(node, name, dt)
    if spiking.filters_input:
        raise SlssnnError(f"{where}: followed by '{name}' ({spiking.kind}), whose own current "
                          "decays (tau_syn > dt): two current filters in a row; Loihi's CUBA "
                          "neuron has one")
    shape = spiking.threshold.shape
    try:
        tau, r, v_leak = (np.broadcast_to(_array(current, f), shape)
                          for f in ("tau", "r", "v_leak"))
    except ValueError:
        raise SlssnnError(f"{where}: parameters of shape {_array(current, 'tau').shape} do not "
                          f"fit '{name}' of shape {shape}") from None
    ratio = _tau_ratio(tau, dt)
    i_decay, i_float = _decay(ratio, "dt/tau", where)
    if i_decay == 0:
        raise SlssnnError(f"{where}: tau = inf (a current that never decays); netx needs "
                          "iDecay >= 1")
    leak_in = ratio * v_leak
    if i_decay < DECAY_UNITY and np.any(leak_in != 0):
        raise SlssnnError(f"{where}: v_leak would be filtered by the decaying current "
                          "(tau > dt); Loihi adds bias to the voltage (express it as "
                          f"'{name}''s v_leak)")
    return NeuronFloat(f"LI+{spiking.kind}", i_decay, spiking.v_decay, i_float,
                       spiking.v_decay_float, spiking.gain * ratio * r, spiking.threshold,
                       spiking.leak_bias + spiking.gain * leak_in)
