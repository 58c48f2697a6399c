"""Energy: device model files, the arithmetic (checked against hand-worked numbers), the report."""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path

import matplotlib.image
import pytest

from slssnn import energy
from slssnn.errors import SlssnnError

# A tiny run: 10 samples, 5 timesteps, a 4-neuron input layer and a 2-neuron dense layer.
# Totals over the 10 samples, except ann_macs (per inference: 4 inputs x 2 outputs = 8).
RUN = {
    "backend": "emulator", "network": "tiny.net", "dataset": "digits", "split": "test",
    "samples": 10, "timesteps": 5, "accuracy": 0.9, "predictions": [0] * 10, "labels": [0] * 10,
    "layers": [
        {"name": "0:input", "type": "input", "shape": [4], "neurons": 4,
         "spikes": 80, "synops": 0, "neuron_updates": 200, "ann_macs": 0},
        {"name": "1:dense", "type": "dense", "shape": [2], "neurons": 2,
         "spikes": 30, "synops": 1000, "neuron_updates": 100, "ann_macs": 8},
    ],
    "wall_seconds": 0.1,
}
# Per inference (/ 10 samples): input 8 spikes, 0 synops, 20 updates, 0 MACs;
#                               dense 3 spikes, 100 synops, 10 updates, 8 MACs.
LOIHI_INPUT_PJ = 0 * 23.6 + 20 * 81 + 8 * 1.7        # 1633.6
LOIHI_DENSE_PJ = 100 * 23.6 + 10 * 81 + 3 * 1.7      # 2360 + 810 + 5.1 = 3175.1
LOIHI_PJ = LOIHI_INPUT_PJ + LOIHI_DENSE_PJ           # 4808.7
KERAS_PJ = 100 * (23.6 + 3.5) + 30 * 81              # 2710 + 2430 = 5140
HOROWITZ_AC_PJ = 100 * 0.9                           # 90
HOROWITZ_MAC_PJ = 8 * 4.6                            # 36.8


def approx(value: float) -> object:
    return pytest.approx(value, rel=1e-12)


@pytest.fixture(scope="module")
def models():
    return energy.builtin_models()


def write(path: Path, data: object) -> Path:
    path.write_text(json.dumps(data))
    return path


# ---- arithmetic ---------------------------------------------------------------------------

def test_counts_per_inference_and_firing_rate():
    counts = energy.per_inference_counts(RUN)
    inp, dense = counts["layers"]
    assert (inp["spikes"], inp["synops"], inp["neuron_updates"], inp["ann_macs"]) == (8, 0, 20, 0)
    assert (dense["spikes"], dense["synops"], dense["neuron_updates"], dense["ann_macs"]) == (
        3, 100, 10, 8)
    assert inp["firing_rate"] == approx(80 / (4 * 5 * 10))    # 0.4 spikes/neuron/step
    assert dense["firing_rate"] == approx(30 / (2 * 5 * 10))  # 0.3
    assert counts["total"] == {"spikes": 11, "synops": 100, "neuron_updates": 30, "ann_macs": 8}


def test_loihi_by_hand(models):
    snn = energy.estimate(RUN, models["loihi"])["formulas"]["snn"]
    assert snn["pj"] == approx(LOIHI_PJ)
    assert snn["j"] == approx(LOIHI_PJ * 1e-12)
    terms = {t["count"]: t for t in snn["terms"]}
    assert terms["synops"]["pj"] == approx(100 * 23.6)
    assert terms["synops"]["constant"] == "synaptic_op"
    assert terms["neuron_updates"]["pj"] == approx(30 * 81)
    assert terms["spikes"]["pj"] == approx(11 * 1.7)
    assert terms["spikes"]["value_pj"] == 1.7
    inp, dense = snn["layers"]
    assert inp["pj"] == approx(LOIHI_INPUT_PJ)
    assert dense["pj"] == approx(LOIHI_DENSE_PJ)
    assert dense["j"] == approx(LOIHI_DENSE_PJ * 1e-12)
    assert [t["pj"] for t in dense["terms"]] == [approx(2360), approx(810), approx(5.1)]
    assert inp["share"] == approx(LOIHI_INPUT_PJ / LOIHI_PJ)
    assert inp["share"] + dense["share"] == approx(1.0)


def test_keras_spiking_and_horowitz_by_hand(models):
    keras = energy.estimate(RUN, models["loihi-keras-spiking"])["formulas"]
    assert set(keras) == {"snn"}
    assert keras["snn"]["pj"] == approx(KERAS_PJ)
    assert [t["pj"] for t in keras["snn"]["terms"]] == [approx(2360), approx(350), approx(2430)]
    horowitz = energy.estimate(RUN, models["horowitz45nm"])["formulas"]
    assert horowitz["snn"]["pj"] == approx(HOROWITZ_AC_PJ)
    assert horowitz["ann"]["pj"] == approx(HOROWITZ_MAC_PJ)
    assert horowitz["ann"]["j"] == approx(36.8e-12)
    assert horowitz["ann"]["layers"][1]["pj"] == approx(HOROWITZ_MAC_PJ)
    assert horowitz["snn"]["layers"][0]["pj"] == 0


def test_zero_activity_gives_zero_energy_and_no_share(models):
    run = copy.deepcopy(RUN)
    for layer in run["layers"]:
        layer.update(spikes=0, synops=0, neuron_updates=0)
    snn = energy.estimate(run, models["horowitz45nm"])["formulas"]["snn"]
    assert snn["pj"] == 0 and snn["layers"][1]["share"] is None


# ---- device model files -------------------------------------------------------------------

def test_builtin_models(models):
    assert list(models) == ["loihi", "loihi-keras-spiking", "horowitz45nm"]
    loihi = models["loihi"].constants
    assert {k: c.value_pj for k, c in loihi.items()} == {
        "synaptic_op": 23.6, "neuron_update_active": 81.0, "neuron_update_inactive": 52.0,
        "spike_within_tile": 1.7, "spike_east_west_hop": 3.0, "spike_north_south_hop": 4.0}
    assert all("Davies" in c.source and "Table 2" in c.source for c in loihi.values())
    horowitz = models["horowitz45nm"].constants
    assert (horowitz["accumulate"].value_pj, horowitz["multiply_accumulate"].value_pj) == (
        0.9, 4.6)
    assert all("Horowitz" in c.source and "ISSCC 2014" in c.source for c in horowitz.values())
    assert "keras-spiking" in models["loihi-keras-spiking"].constants["spike_per_synop"].source
    assert not (energy.devices.BUILTIN_DIR / "loihi2.json").exists()


def test_model_round_trips_through_its_file_form(models, tmp_path):
    for model in models.values():
        again = energy.load_device_model(write(tmp_path / f"{model.name}.json", model.to_dict()))
        assert (again.constants, again.formulas) == (model.constants, model.formulas)


def test_user_device_file(tmp_path):
    path = write(tmp_path / "mychip.json", {
        "format": "slssnn-energy-device", "version": 1, "name": "mychip",
        "description": "made-up chip for the test",
        "constants": {"op": {"value_pj": 2.0, "source": "my measurement"},
                      "mac": {"value_pj": 10.0, "source": "my datasheet"}},
        "formulas": {"snn": {"terms": [{"count": "synops", "constant": "op"},
                                       {"count": "spikes", "constant": "op"}]},
                     "ann": {"label": "ANN", "terms": [{"count": "ann_macs", "constant": "mac"}]}},
    })
    model = energy.load_device_model(path)
    assert model.formulas["snn"].label == "SNN"  # default label
    result = energy.estimate(RUN, model)["formulas"]
    assert result["snn"]["pj"] == approx((100 + 11) * 2.0)
    assert result["ann"]["pj"] == approx(8 * 10.0)


def _loihi_file() -> dict:
    return json.loads((energy.devices.BUILTIN_DIR / "loihi.json").read_text())


def _drop(key: str):
    def edit(d):
        del d[key]
    return edit


@pytest.mark.parametrize("edit, field", [
    (_drop("name"), "name"),
    (_drop("constants"), "constants"),
    (_drop("formulas"), "formulas"),
    (lambda d: d["constants"]["synaptic_op"].pop("value_pj"), "constants.synaptic_op.value_pj"),
    (lambda d: d["constants"]["synaptic_op"].pop("source"), "constants.synaptic_op.source"),
    (lambda d: d["constants"]["synaptic_op"].update(source=" "), "constants.synaptic_op.source"),
    (lambda d: d["constants"]["synaptic_op"].update(value_pj=-23.6),
     "constants.synaptic_op.value_pj"),
    (lambda d: d["constants"]["synaptic_op"].update(value_pj="23.6"),
     "constants.synaptic_op.value_pj"),
    (lambda d: d["formulas"]["snn"]["terms"][0].update(count="synapses"),
     "formulas.snn.terms[0].count"),
    (lambda d: d["formulas"]["snn"]["terms"][0].update(count="ann_macs"),
     "formulas.snn.terms[0].count"),
    (lambda d: d["formulas"]["snn"]["terms"][2].update(constant="spike_energy"),
     "formulas.snn.terms[2].constant"),
    (lambda d: d.update(formulas={"gpu": d["formulas"]["snn"]}), "formulas.gpu"),
    (lambda d: d.update(constans={}), "constans"),
    (lambda d: d.update(version=2), "version"),
])
def test_bad_device_file_names_file_and_field(tmp_path, edit, field):
    data = _loihi_file()
    edit(data)
    path = write(tmp_path / "bad.json", data)
    with pytest.raises(SlssnnError, match=re.escape(f"field '{field}'")) as err:
        energy.load_device_model(path)
    assert str(path) in str(err.value) and "\n" not in str(err.value)


def test_device_file_missing_or_not_json(tmp_path):
    with pytest.raises(SlssnnError, match="no such file"):
        energy.load_device_model(tmp_path / "absent.json")
    (tmp_path / "broken.json").write_text("{not json")
    with pytest.raises(SlssnnError, match="broken.json: not a readable JSON"):
        energy.load_device_model(tmp_path / "broken.json")


# ---- run JSON ----------------------------------------------------------------------------

@pytest.mark.parametrize("edit, field", [
    (_drop("samples"), "samples"),
    (_drop("backend"), "backend"),
    (lambda r: r.update(samples=0), "samples"),
    (lambda r: r.update(timesteps=-1), "timesteps"),
    (lambda r: r.update(backend="loihi2"), "backend"),
    (lambda r: r.update(accuracy=97.0), "accuracy"),
    (lambda r: r.update(layers=[]), "layers"),
    (lambda r: r["layers"][1].pop("synops"), "layers[1].synops"),
    (lambda r: r["layers"][1].update(spikes=-3), "layers[1].spikes"),
    (lambda r: r["layers"][0].update(neuron_updates="many"), "layers[0].neuron_updates"),
])
def test_bad_run_names_file_and_field(tmp_path, edit, field):
    run = copy.deepcopy(RUN)
    edit(run)
    path = write(tmp_path / "run.json", run)
    with pytest.raises(SlssnnError, match=re.escape(f"field '{field}'")) as err:
        energy.load_run(path)
    assert str(path) in str(err.value) and "\n" not in str(err.value)
    with pytest.raises(SlssnnError):
        energy.write_report(path, tmp_path / "out")
    assert not (tmp_path / "out" / "energy.json").exists()


def test_run_missing_or_not_json(tmp_path):
    with pytest.raises(SlssnnError, match="absent.json: no such file"):
        energy.write_report(tmp_path / "absent.json", tmp_path / "out")
    (tmp_path / "run.json").write_text("[1, 2")
    with pytest.raises(SlssnnError, match="run.json: not a readable JSON"):
        energy.load_run(tmp_path / "run.json")


# ---- the report ---------------------------------------------------------------------------

@pytest.fixture(scope="module")
def rendered(tmp_path_factory):
    root = tmp_path_factory.mktemp("energy")
    run_path = write(root / "run.json", RUN)
    summary = energy.write_report(run_path, root / "report")
    return root / "report", summary


def test_report_writes_three_files_and_nothing_else(rendered):
    out, summary = rendered
    assert sorted(p.name for p in out.iterdir()) == ["energy.json", "energy.md", "energy.png"]
    assert summary["files"] == {"png": str(out / "energy.png"), "md": str(out / "energy.md"),
                                "json": str(out / "energy.json")}


def test_report_json(rendered):
    out, _ = rendered
    report = json.loads((out / "energy.json").read_text())
    assert report["run"] == {"path": report["run"]["path"], "backend": "emulator",
                             "network": "tiny.net", "dataset": "digits", "split": "test",
                             "samples": 10, "timesteps": 5, "accuracy": 0.9,
                             "counts_identical_in": [], "graded_layers": []}
    for engine in ("gpu", "cpu"):  # not asked to measure: says so, gives no number
        assert report[engine] == {"measured": False, "reason": "not requested (pass "
                                  "--measure-gpu CHECKPOINT to measure)"}
    assert report["measured_ratios"] == []
    assert report["counts_per_inference"]["total"]["synops"] == 100
    assert report["counts_per_inference"]["layers"][1]["firing_rate"] == approx(0.3)
    by_label = {e["label"]: e for e in report["estimates"]}
    assert list(by_label) == ["loihi SNN", "loihi-keras-spiking SNN", "horowitz45nm SNN (AC)",
                              "horowitz45nm ANN twin (MAC)"]
    assert by_label["loihi SNN"]["j_per_inference"] == approx(LOIHI_PJ * 1e-12)
    assert by_label["loihi SNN"]["layers"][1]["share"] == approx(LOIHI_DENSE_PJ / LOIHI_PJ)
    assert by_label["horowitz45nm ANN twin (MAC)"]["pj_per_inference"] == approx(HOROWITZ_MAC_PJ)
    assert report["ratios"]["ann_mac_vs_snn_ac"] == approx((8 * 4.6) / (100 * 0.9))
    assert report["ratios"]["horowitz_ann_vs_loihi"] == approx(HOROWITZ_MAC_PJ / LOIHI_PJ)
    constants = report["models"]["loihi"]["constants"]
    assert constants["synaptic_op"]["value_pj"] == 23.6
    assert "Davies" in constants["synaptic_op"]["source"]
    assert constants["neuron_update_inactive"]["value_pj"] == 52.0


def test_report_markdown(rendered):
    out, _ = rendered
    md = (out / "energy.md").read_text()
    assert "GPU: not measured: not requested" in md
    assert "CPU: not measured: not requested" in md
    assert "![energy](energy.png)" in md
    for text in ("tiny.net", "emulator", "10 samples", "90.00 %", "loihi SNN",
                 "horowitz45nm ANN twin (MAC)", "ann_mac_vs_snn_ac", "1:dense",
                 "Davies et al.", "Horowitz", "keras-spiking"):
        assert text in md, text


def test_report_png_size(rendered):
    out, _ = rendered
    image = matplotlib.image.imread(out / "energy.png")
    assert image.shape[:2] == (500, 1200)  # (H, W) at 12 x 5 in, 100 dpi


def test_summary(rendered):
    _, summary = rendered
    assert summary["j_per_inference"]["loihi SNN"] == approx(LOIHI_PJ * 1e-12)
    assert summary["j_per_inference"]["loihi-keras-spiking SNN"] == approx(KERAS_PJ * 1e-12)
    assert summary["gpu_measured"] is False
    text = energy.format_summary(summary)
    assert "horowitz45nm SNN (AC)" in text and "GPU: not measured: not requested" in text


def test_report_with_chosen_models_has_no_ratio_it_cannot_compute(models):
    report = energy.build_report(RUN, [models["horowitz45nm"]])
    assert report["ratios"]["ann_mac_vs_snn_ac"] == approx(HOROWITZ_MAC_PJ / HOROWITZ_AC_PJ)
    assert report["ratios"]["horowitz_ann_vs_loihi"] is None
    assert report["breakdown"] == {"model": "horowitz45nm", "formula": "snn"}
    with pytest.raises(SlssnnError, match="each name once"):
        energy.build_report(RUN, [models["loihi"], models["loihi"]])


def test_report_without_synops_leaves_the_ratio_undefined(tmp_path):
    run = copy.deepcopy(RUN)
    for layer in run["layers"]:
        layer["synops"] = 0
    summary = energy.write_report(write(tmp_path / "run.json", run), tmp_path / "out")
    assert summary["ratios"]["ann_mac_vs_snn_ac"] is None  # 0 pJ of ACs: no ratio, no crash
    assert summary["j_per_inference"]["horowitz45nm SNN (AC)"] == 0
    assert summary["j_per_inference"]["loihi SNN"] == approx(30 * 81e-12 + 11 * 1.7e-12)
    assert matplotlib.image.imread(tmp_path / "out" / "energy.png").shape[:2] == (500, 1200)
