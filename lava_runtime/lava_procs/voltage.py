"""A Lava process that reads a block's voltage at the last step of each sample's window.

A network whose output layer never spikes (SLAYER's ``Affine`` block, exported as
a CUBA layer with an unreachable threshold, e.g. lava-dl's own ``mnist.net``) is
read out by its membrane voltage: the class whose neuron holds the highest ``v``
when the sample's window ends. A :class:`VoltageSampler` reads the neuron's ``v``
through a RefPort in the post-management phase of exactly those steps, the way
lava/proc/monitor/models.py's ``PyMonitorModel.run_post_mgmt`` reads a Var, and
keeps one row per sample: reading it back costs ``samples x neurons`` messages
(a Monitor would keep, and send back, every step).

Its process model is found by Lava in the same module
(lava/magma/compiler/compiler_graphs.py:795-900, ``_find_proc_models``).
"""

from __future__ import annotations

import numpy as np
from lava.magma.core.decorator import implements, requires, tag
from lava.magma.core.model.py.model import PyLoihiProcessModel
from lava.magma.core.model.py.ports import PyRefPort
from lava.magma.core.model.py.type import LavaPyType
from lava.magma.core.process.ports.ports import RefPort
from lava.magma.core.process.process import AbstractProcess
from lava.magma.core.process.variable import Var
from lava.magma.core.resources import CPU
from lava.magma.core.sync.protocols.loihi_protocol import LoihiProtocol


class VoltageSampler(AbstractProcess):
    """Reads ``v_ref``'s Var (shape ``shape``) after global step ``first + (k+1) * T``
    (Lava's ``time_step`` is 1-based), the last step of sample ``k``'s window, for
    ``k < samples``.

    ``voltages`` (``(samples, *shape)``): the Var's value then, per sample.
    """

    def __init__(self, *, shape: tuple[int, ...], first: int, samples: int,
                 timesteps: int) -> None:
        super().__init__(shape=shape, first=first, samples=samples, timesteps=timesteps)
        self.v_ref = RefPort(shape=shape)
        self.voltages = Var(shape=(samples, *shape), init=np.zeros((samples, *shape), np.int32))


@implements(proc=VoltageSampler, protocol=LoihiProtocol)
@requires(CPU)
@tag("fixed_pt")
class PyVoltageSamplerModel(PyLoihiProcessModel):
    """Fixed-point sampler: reads ``v`` only where a sample's window ends."""

    v_ref: PyRefPort = LavaPyType(PyRefPort.VEC_DENSE, np.int32)
    voltages: np.ndarray = LavaPyType(np.ndarray, np.int32)

    def _sample(self) -> int | None:
        """The sample whose window ends at this step, else None."""
        params = self.proc_params
        offset = self.time_step - params["first"]  # 1-based step within the run's windows
        if offset < 1 or offset % params["timesteps"]:
            return None
        sample = offset // params["timesteps"] - 1
        return sample if sample < params["samples"] else None

    def post_guard(self) -> bool:
        return self._sample() is not None

    def run_post_mgmt(self) -> None:
        self.voltages[self._sample()] = np.asarray(self.v_ref.read()).astype(np.int32)
