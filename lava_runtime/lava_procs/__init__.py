"""slssnn's own Lava process models (imported only inside a Lava run).

- :mod:`.counter`: :class:`~.counter.SpikeCounter`, counts a block's spikes
  inside the run so that only counts are read back;
- :mod:`.conv`: :class:`~.conv.PyConvModelFixedExact`, Lava's fixed-point Conv
  model with its per-channel-pair scipy loop replaced by one exact integer
  product per step.

A package of its own because Lava looks for a process's models by executing
every module next to it (lava/magma/compiler/compiler_graphs.py:795-900).
"""
