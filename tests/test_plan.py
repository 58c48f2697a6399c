"""Deployment plan: chip files, the mapping and the timing, against hand-worked examples.

Loihi's limits (energy/chips/loihi.json, Davies et al. 2018, p. 89): 1,024 neurons, 4,096
fan-in axons, 4,096 fan-out axons and 1,048,576 bits (128 KiB) of synaptic memory per core;
Table 2 times: 3.5 ns per synaptic op, 8.4 ns per neuron update, 2.1 ns per spike message,
465 ns barrier.
"""

from __future__ import annotations

import copy
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from slssnn.energy.chips import load_chip
from slssnn.energy.plan import plan_network, weight_bits
from slssnn.energy.timing import estimate_timing
from slssnn.errors import SlssnnError
from slssnn.export.netx_reader import CubaNeuron, LayerSpec

IF = CubaNeuron(i_decay=4096, v_decay=0, threshold=64)
LAVA_DL_NETX = Path(__import__("lava.lib.dl.netx", fromlist=["x"]).__file__).parents[4] \
    / "tests" / "lava" / "lib" / "dl" / "netx"


class Net:
    """The two attributes the planner reads of a netx reader ``NetxNetwork``."""

    def __init__(self, layers: list[LayerSpec]):
        self.layers, self.path = layers, Path("hand-worked.net")


def eight_bit(shape: tuple[int, ...]) -> np.ndarray:
    """Weights on lava-dl's grid (even, -256..254): 8 bits per synapse."""
    w = np.full(shape, 2, dtype=np.int64)
    w.flat[0], w.flat[-1] = -256, 254
    return w


def dense_net(inputs: int, neurons: int) -> Net:
    return Net([LayerSpec(0, "input", (inputs,), IF),
                LayerSpec(1, "dense", (neurons,), IF, eight_bit((neurons, inputs)))])


@pytest.fixture(scope="module")
def loihi():
    return load_chip("loihi")


def test_weight_bits():
    assert weight_bits(eight_bit((3, 3))) == 8  # step 2, quotients -128..127
    assert weight_bits(np.array([0, 2, 2])) == 1  # step 2, quotients 0..1, unsigned
    assert weight_bits(np.array([-1, 1])) == 2
    assert weight_bits(np.array([-256, 255])) == 9  # Loihi's widest (9-bit signed)
    assert weight_bits(np.zeros(4, dtype=np.int64)) == 1


def test_binds_on_neurons(loihi):
    # 2,500 neurons of 100 inputs x 8 bits = 800 bits each: memory would allow 1,310 per
    # core, the 1,024-neuron limit allows 1,024 -> ceil(2500 / 1024) = 3 cores. The fewest
    # neurons per core that still needs only 3 cores: ceil(2500 / 3) = 834 (81 %).
    plan = plan_network(dense_net(100, 2500), loihi)
    layer = plan["layers"][1]
    assert (layer["cores"], layer["binding"], layer["tile"]) == (3, "neurons", [834])
    assert layer["per_core"] == {"neurons": 834, "fan-in": 100, "fan-out": 0,
                                 "synaptic memory": 834 * 100 * 8}
    # the input layer's 100 neurons each reach all 3 cores: 300 fan-out axons, one core
    assert plan["layers"][0]["per_core"]["fan-out"] == 300
    assert (plan["total_cores"], plan["chips"], plan["placeable"]) == (4, 1, True)


def test_binds_on_synaptic_memory(loihi):
    # 256 neurons of 2,048 inputs x 8 bits = 16,384 bits each: 1,048,576 / 16,384 = 64
    # neurons per core, 4 cores; memory 100 % used.
    layer = plan_network(dense_net(2048, 256), loihi)["layers"][1]
    assert (layer["cores"], layer["binding"], layer["tile"]) == (4, "synaptic memory", [64])
    assert layer["per_core"]["synaptic memory"] == 1_048_576
    assert layer["limits_used"]["synaptic memory"] == 1.0


def test_binds_on_fan_in(loihi):
    # conv 3x3, padding 1, 64 -> 16 channels on 16x16, 1-bit weights. A tile of h x w output
    # positions reads 64 channels x its input rows x its input columns <= 4,096: h + 2 rows
    # inside the image, h + 1 at a border (the padding has no inputs). Fewest tiles: 4 rows
    # (an inner tile reads 6) x 8 columns (both tiles touch a border: 9) = 54 positions,
    # 3,456 axons (84 %), 4 x 2 = 8 cores; 6 x 6 tiles need 9 cores, 16 x 2 tiles 8 cores
    # but 4,096 axons (100 %), and no tiling fits 7 cores (16 x 3: 16 x 5 x 64 = 5,120).
    # Memory: 512 neurons x 576 synapses x 1 bit = 294,912 bits (28 %); neurons 50 %.
    weight = np.zeros((16, 64, 3, 3), dtype=np.int64)
    weight[0, 0, 0, 0] = 2
    conv = LayerSpec(1, "conv", (16, 16, 16), IF, weight, padding=(1, 1))
    net = Net([LayerSpec(0, "input", (64, 16, 16), IF), conv])
    layer = plan_network(net, loihi)["layers"][1]
    assert (layer["cores"], layer["binding"], layer["tile"]) == (8, "fan-in", [16, 4, 8])
    assert layer["per_core"] == {"neurons": 512, "fan-in": 3456, "fan-out": 0,
                                 "synaptic memory": 512 * 576}
    assert layer["bits_per_synapse"] == 1 and layer["fan_in"] == 576
    # every input position is read by outputs in at most 2 row tiles x 2 column tiles
    assert plan_network(net, loihi)["layers"][0]["dest_cores"] == 4


def test_unplaceable_layer_is_named(loihi):
    plan = plan_network(dense_net(5000, 10), loihi)
    assert not plan["placeable"] and plan["total_cores"] is None
    assert plan["problems"] == ["layer 1:dense: one neuron reads 5,000 source neurons (fan-in "
                                "axons), beyond a core's 4,096"]


def test_loihi2_uses_only_published_chip_limits():
    loihi2 = load_chip("loihi2")
    plan = plan_network(dense_net(2048, 256), loihi2)
    assert plan["layers"][1]["cores"] is None and plan["total_cores"] is None
    assert plan["chips"] == 1 and plan["chip_demands"] == {"neurons": 1, "synapses": 1}
    assert "neurons_per_core" in plan["not_checked"]
    timing = estimate_timing(plan, timing_run(), loihi2)
    assert not timing["estimated"] and "not public" in timing["reason"]


def timing_run() -> dict:
    # one sample, T = 2: the 2,048 inputs spike 1,000 times, each reaching 256 neurons
    layers = [{"name": "0:input", "type": "input", "neurons": 2048, "spikes": 1000,
               "synops": 0, "neuron_updates": 2048 * 2, "ann_macs": 0},
              {"name": "1:dense", "type": "dense", "neurons": 256, "spikes": 100,
               "synops": 1000 * 256, "neuron_updates": 256 * 2, "ann_macs": 2048 * 256}]
    return {"backend": "emulator", "network": "hand-worked.net", "dataset": "digits",
            "samples": 1, "timesteps": 2, "accuracy": 1.0, "layers": layers}


def test_timing_hand_worked(loihi):
    plan = plan_network(dense_net(2048, 256), loihi)
    # input layer: 2 cores of 1,024 (fan-out 1,024 x 4 dense cores = 4,096, the limit)
    assert plan["layers"][0]["tile"] == [1024] and plan["layers"][0]["dest_cores"] == 4
    timing = estimate_timing(plan, timing_run(), loihi)
    # dense core: 64 of 256 neurons -> 1/4 of 128,000 synops per step x 3.5 ns = 112,000 ns,
    #             + 64 updates x 8.4 ns = 537.6 ns (the last layer sends no messages)
    # input core: 1/2 of 500 spikes per step x 4 cores x 2.1 ns = 2,100 ns + 1,024 x 8.4 ns
    dense, inp = timing["layers"][1], timing["layers"][0]
    assert dense["core_s"] == pytest.approx(112_537.6e-9)
    assert inp["core_s"] == pytest.approx((2_100 + 8_601.6) * 1e-9)
    step = (112_537.6 + 465) * 1e-9
    assert timing["slowest"]["layer"] == "1:dense"
    assert timing["time_per_step_s"] == pytest.approx(step)
    assert timing["steps_per_inference"] == 3  # T = 2, plus 1 step of pipeline fill
    assert timing["latency_s"] == pytest.approx(3 * step)
    assert timing["inferences_per_s"] == pytest.approx(1 / (2 * step))
    assert timing["leaves_out"]


def test_timing_refuses_another_networks_run(loihi):
    run = timing_run()
    run["layers"][1]["neurons"] = 255
    with pytest.raises(SlssnnError, match="does not match network"):
        estimate_timing(plan_network(dense_net(2048, 256), loihi), run, loihi)


# ---- chip files ---------------------------------------------------------------------------

def chip_file(tmp_path: Path, change) -> Path:
    data = json.loads((Path(load_chip("loihi").origin)).read_text())
    change(data)
    path = tmp_path / "chip.json"
    path.write_text(json.dumps(data))
    return path


@pytest.mark.parametrize("change, message", [
    (lambda d: d["limits"].pop("neurons_per_core"),
     r"field 'limits\.neurons_per_core' is missing"),
    (lambda d: d["limits"]["fan_in_axons_per_core"].update(value=-4096),
     r"field 'limits\.fan_in_axons_per_core\.value' must not be negative"),
    (lambda d: d["times_ns"]["synaptic_op"].update(value=-3.5),
     r"field 'times_ns\.synaptic_op\.value' must not be negative"),
    (lambda d: d["times_ns"]["barrier_sync"].pop("source"),
     r"field 'times_ns\.barrier_sync\.source' is missing"),
    (lambda d: d["limits"]["cores_per_chip"].update(value="128"),
     r"field 'limits\.cores_per_chip\.value' must be a number"),
])
def test_bad_chip_file_is_refused_naming_the_field(tmp_path, change, message):
    path = chip_file(tmp_path, change)
    with pytest.raises(SlssnnError, match=rf"^chip file {path}: {message}"):
        load_chip(path)


def test_not_public_value_is_accepted(tmp_path):
    path = chip_file(tmp_path, lambda d: d["limits"]["fan_out_axons_per_core"].update(
        value=None, source="not public"))
    plan = plan_network(dense_net(2048, 256), load_chip(path))
    assert "fan_out_axons_per_core" in plan["not_checked"]
    assert "fan-out" not in plan["layers"][1]["limits_used"]


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "slssnn", *args], capture_output=True,
                          text=True, timeout=120)


def test_cli_plan_on_lava_dl_tiny_net(tmp_path):
    done = run_cli("plan", str(LAVA_DL_NETX / "tiny.net"), "-o", str(tmp_path / "plan.json"))
    assert done.returncode == 0, done.stderr
    assert "total: 3 cores, 1 chip(s)" in done.stdout
    assert json.loads((tmp_path / "plan.json").read_text())["plan"]["total_cores"] == 3
    done = run_cli("plan", str(LAVA_DL_NETX / "tiny.net"), "--chip", "loihi2")
    assert done.returncode == 0 and "not public" in done.stdout


def test_cli_plan_refuses_bad_chip_file_in_one_line(tmp_path):
    path = chip_file(tmp_path, lambda d: d["limits"].pop("cores_per_chip"))
    done = run_cli("plan", str(LAVA_DL_NETX / "tiny.net"), "--chip", str(path))
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        f"slssnn: error: chip file {path}: field 'limits.cores_per_chip' is missing"]


def test_plan_does_not_change_with_copy(loihi):
    net = dense_net(2048, 256)
    before = copy.deepcopy(net.layers[1].weight)
    plan_network(net, loihi)
    assert np.array_equal(before, net.layers[1].weight)


def test_energy_report_carries_plan_latency_and_energy_delay(tmp_path):
    from slssnn.energy.report import write_report

    layers = [("0:input", "input", 768, 100, 0), ("1:conv", "conv", 864, 50, 20000),
              ("2:conv", "conv", 36, 5, 3000)]
    run = {"backend": "emulator", "network": str(LAVA_DL_NETX / "tiny.net"), "dataset": "digits",
           "samples": 2, "timesteps": 4, "accuracy": 0.5,
           "layers": [{"name": n, "type": t, "neurons": k, "spikes": s, "synops": y,
                       "neuron_updates": k * 4 * 2, "ann_macs": 0}
                      for n, t, k, s, y in layers]}
    path = tmp_path / "run.json"
    path.write_text(json.dumps(run))
    summary = write_report(path, tmp_path / "e")
    report = json.loads((tmp_path / "e" / "energy.json").read_text())
    timing = report["deployment"]["timing"]
    assert report["deployment"]["plan"]["total_cores"] == 3 and timing["estimated"]
    assert timing["steps_per_inference"] == 4 + 2
    loihi = next(e for e in report["estimates"] if e["label"] == "loihi SNN")
    assert report["energy_delay"]["j_s"] == pytest.approx(
        loihi["j_per_inference"] * timing["latency_s"])
    assert summary["energy_delay"]["j_s"] == report["energy_delay"]["j_s"]
    markdown = (tmp_path / "e" / "energy.md").read_text()
    assert "## Deployment plan on loihi" in markdown and "Energy x delay per inference" in markdown
    write_report(path, tmp_path / "g", chip="loihi2")
    report = json.loads((tmp_path / "g" / "energy.json").read_text())
    assert report["deployment"]["plan"]["chips"] == 1
    assert "not public" in report["deployment"]["timing"]["reason"]
    # a run whose network file is gone: the report says why, without a latency
    run["network"] = str(tmp_path / "gone.net")
    path.write_text(json.dumps(run))
    write_report(path, tmp_path / "f")
    report = json.loads((tmp_path / "f" / "energy.json").read_text())
    assert report["deployment"]["plan"] is None and report["energy_delay"]["j_s"] is None
    assert "network file not readable" in report["deployment"]["timing"]["reason"]


@pytest.mark.parametrize("out_size, in_size, k, s, p, d", [
    (4, 8, 3, 2, 1, 1), (7, 7, 3, 1, 1, 1), (3, 9, 2, 3, 0, 1), (5, 9, 3, 1, 0, 2),
    (6, 6, 5, 1, 2, 1)])
def test_tile_counts_against_brute_force(out_size, in_size, k, s, p, d):
    from slssnn.energy.plan import _box_inputs, _tiles_reached

    reads = {o: {o * s - p + j * d for j in range(k)} & set(range(in_size))
             for o in range(out_size)}
    for t in range(1, out_size + 1):
        tiles = [range(a, min(a + t, out_size)) for a in range(0, out_size, t)]
        box = max(len(set().union(*(reads[o] for o in tile))) for tile in tiles)
        reach = max(sum(any(r in reads[o] for o in tile) for tile in tiles)
                    for r in range(in_size))
        assert _box_inputs(out_size, in_size, k, s, p, d)[t - 1] == box
        assert _tiles_reached(out_size, in_size, k, s, p, d)[t - 1] == reach
