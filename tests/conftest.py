"""Shared set-up of the test process.

Lava calls ``multiprocessing.set_start_method('fork')`` when it is first imported and raises
if anything fixed a method before (tqdm's progress-bar lock does). slssnn's own runner
prepares for that (``lava_runtime/lava_runner.py: _prepare_multiprocessing``), but tests that
import ``lava.lib.dl.netx`` directly would then pass or fail by test order. Lava is imported
here first, as it is in a whole-suite run, so a subset of the tests runs the same way.
"""

import lava.magma.runtime.message_infrastructure.multiprocessing  # noqa: F401
