"""Where the tests find lava-dl's own networks, without anything beside the checkout.

lava-dl 0.6.0's wheel installs its netx test networks and recorded ground
truths under ``site-packages/tests/lava/lib/dl/netx`` (``tiny.net``,
``mnist.net``, ``gts/...``); the Oxford tutorial network, which the wheel does
not ship, lives in ``tests/data/lava-dl`` with lava-dl's license.
"""

from __future__ import annotations

from importlib import metadata
from pathlib import Path

LAVA_DL_NETX = Path(str(metadata.distribution("lava-dl").locate_file("tests/lava/lib/dl/netx")))
"""lava-dl's installed netx test folder."""
GTS = LAVA_DL_NETX / "gts"
TINY_NET = LAVA_DL_NETX / "tiny.net"
TINY_BIAS = GTS / "tinynet" / "input_bias.npy"
TINY_OUTPUT = GTS / "tinynet" / "output.npy"
MNIST_NET = LAVA_DL_NETX / "mnist.net"
PILOTNET_LIF = GTS / "pilotnet_lif"
PILOTNET_SDNN = GTS / "pilotnet_sdnn"
NTIDIGITS = GTS / "ntidigits"
OXFORD = Path(__file__).resolve().parent / "data" / "lava-dl" / "oxford"
