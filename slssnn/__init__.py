"""slssnn: spike-train level SNNs from PyTorch to Lava, with energy reports.

Stages (one way): ``slssnn.training`` -> ``slssnn.export`` ->
``slssnn.lava_runtime`` -> ``slssnn.energy``; ``slssnn.cli`` drives them.
``slssnn.errors`` and ``slssnn.atomic`` are foundations every stage may use.
"""

__version__ = "0.1.0"
