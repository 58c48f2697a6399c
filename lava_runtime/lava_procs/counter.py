"""A Lava process that counts a block's spikes inside the run, so only the counts are read back.

Lava 0.10 reads a Var back one element per message
(lava/magma/core/model/py/model.py:123-129, ``_get_var``), so reading a
:class:`lava.proc.io.sink.RingBuffer` of every spike of every layer costs
``neurons x steps`` messages (and the buffer itself ``neurons x steps`` int32
of memory). A :class:`SpikeCounter` attached to a block's ``out`` port adds
what it receives, step by step, into per-neuron totals over the block's
window of the run, and optionally into per-sample totals; reading it back
costs ``neurons`` (+ ``samples x neurons``) messages.

Its process model is found by Lava in the same module
(lava/magma/compiler/compiler_graphs.py:795-900, ``_find_proc_models``).
"""

from __future__ import annotations

import numpy as np
from lava.magma.core.decorator import implements, requires, tag
from lava.magma.core.model.py.model import PyLoihiProcessModel
from lava.magma.core.model.py.ports import PyInPort
from lava.magma.core.model.py.type import LavaPyType
from lava.magma.core.process.ports.ports import InPort
from lava.magma.core.process.process import AbstractProcess
from lava.magma.core.process.variable import Var
from lava.magma.core.resources import CPU
from lava.magma.core.sync.protocols.loihi_protocol import LoihiProtocol


class SpikeCounter(AbstractProcess):
    """Counts spikes arriving on ``a_in`` (shape ``shape``) during global steps
    ``first + 1 .. first + samples * timesteps`` (Lava's ``time_step`` is 1-based).

    ``counts`` (``shape``): spikes per neuron over that window.
    ``sample_counts`` (``(samples, *shape)`` with ``per_sample``, else ``(1,)``):
    spikes per sample and neuron, step ``first + k*T + 1 .. first + k*T + T`` being
    sample ``k``'s.
    """

    def __init__(self, *, shape: tuple[int, ...], first: int, samples: int, timesteps: int,
                 per_sample: bool = False) -> None:
        super().__init__(shape=shape, first=first, samples=samples, timesteps=timesteps,
                         per_sample=per_sample)
        self.a_in = InPort(shape=shape)
        self.counts = Var(shape=shape, init=np.zeros(shape, np.int32))
        sample_shape = (samples, *shape) if per_sample else (1,)
        self.sample_counts = Var(shape=sample_shape, init=np.zeros(sample_shape, np.int32))


@implements(proc=SpikeCounter, protocol=LoihiProtocol)
@requires(CPU)
@tag("fixed_pt")
class PySpikeCounterModel(PyLoihiProcessModel):
    """Fixed-point counter; receives like lava/proc/io/sink.py's ``PyReceiveModelFixed``."""

    a_in: PyInPort = LavaPyType(PyInPort.VEC_DENSE, np.int32)
    counts: np.ndarray = LavaPyType(np.ndarray, np.int32)
    sample_counts: np.ndarray = LavaPyType(np.ndarray, np.int32)

    def run_spk(self) -> None:
        spikes = self.a_in.recv()  # every step, so the channel never stalls
        params = self.proc_params
        offset = self.time_step - 1 - params["first"]  # 0-based step within the window
        if not 0 <= offset < params["samples"] * params["timesteps"]:
            return
        self.counts += spikes.astype(np.int32)
        if params["per_sample"]:
            self.sample_counts[offset // params["timesteps"]] += spikes.astype(np.int32)
