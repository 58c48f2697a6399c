"""``slssnn sweep``: which T to deploy. Train, export and evaluate a network at several T
(and seeds); one table of accuracy, activity, energy and latency per T; the Pareto front.

A sweep is a grid of cells, one per (T, seed), each in its own folder ``OUT/T{T}-seed{S}``:

1. train (``checkpoint.pt``; ``train.json`` when finished; an unfinished run resumes from
   its last epoch);
2. export ``network.net``;
3. run the test split in the emulator (``run-emulator.json``), check its predictions against
   the quantized PyTorch evaluation; for a T in ``lava``, also in Lava (``run-lava.json``,
   whose counts must be identical);
4. the energy report with the deployment plan and latency (``energy.json/.md/.png``);
5. ``cell.json``: the cell's row. A cell with ``cell.json`` is finished and is reused.

Every step skips what its file shows done, so a killed sweep continues where it stopped.
:func:`collect` reads every ``cell.json`` and writes ``sweep.json``, ``sweep.md`` and
``sweep.png`` (:mod:`slssnn.sweep_report`).
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from slssnn.atomic import write_json
from slssnn.errors import SlssnnError
from slssnn.progress import progress_bar

CELL_FILE = "cell.json"
LAVA_TIMEOUT_S = 3600.0  # a Lava run of a cell is stopped (and cleaned up) after this
CELL_FORMAT = "slssnn-sweep-cell"
_CELL_RE = re.compile(r"^T=(\d+),seed=(-?\d+)$")


def parse_cell(text: str) -> tuple[int, int]:
    """``"T=4,seed=1"`` -> ``(4, 1)``; SlssnnError naming the expected form otherwise."""
    match = _CELL_RE.match(text.replace(" ", ""))
    if not match or int(match.group(1)) < 1:
        raise SlssnnError(f"--cell {text!r}: expected T=N,seed=S with N >= 1, e.g. T=4,seed=1")
    return int(match.group(1)), int(match.group(2))


def cell_dir(out: str | os.PathLike[str], timesteps: int, seed: int) -> Path:
    """The folder of cell (T, seed)."""
    return Path(out) / f"T{timesteps}-seed{seed}"


def run_cell(config: Any, lava: bool, chip: str = "loihi", limit: int | None = None,
             log: Callable[[str], None] = print) -> dict[str, Any]:
    """Run (or continue) the cell whose training is ``config`` (a ``TrainConfig``; its
    ``out_dir`` is the cell folder); return its row, also written to ``cell.json``.

    ``lava``: also run the test split in Lava's CPU simulator; ``limit``: first N test
    samples only; ``chip``: the chip of the deployment plan and latency. Under torchrun every
    process trains; rank 0 alone does the rest (the others return ``{}``).
    """
    from slssnn.energy.report import write_report
    from slssnn.export.netx_writer import export_network
    from slssnn.lava_runtime.run import pytorch_record, run_network
    from slssnn.training.checkpoint import load_checkpoint
    from slssnn.training.distributed import is_main_process
    from slssnn.training.trainer import train

    out = Path(config.out_dir)
    done = out / CELL_FILE
    if _finished(done, lava):
        return json.loads(done.read_text())
    if not (out / "train.json").is_file():
        resume = (out / "checkpoint.pt").is_file()
        log(f"train ({'resuming from the last epoch' if resume else 'from scratch'})")
        train(config, resume=resume)
    if not is_main_process():
        return {}
    model, record = load_checkpoint(out / "checkpoint.pt")
    net = out / "network.net"
    if not net.is_file():
        log("export network.net")
        export_network(model, net, {"checkpoint": str((out / "checkpoint.pt").resolve()),
                                    "train_config": record["config"]})
    runs = {"emulator": out / "run-emulator.json"}
    if lava:
        runs["lava"] = out / "run-lava.json"
    records = {}
    for backend, path in runs.items():
        if not path.is_file():
            log(f"run the test split: {backend}" + (" (slow)" if backend == "lava" else ""))
            write_json(path, run_network(net, config.dataset, backend, limit=limit,
                                         data_dir=config.data_dir, timeout=LAVA_TIMEOUT_S,
                                         on_progress=progress_bar(backend, "step")))
        records[backend] = json.loads(path.read_text())
    torch_run = pytorch_record(model, net, config.dataset, limit=limit, data_dir=config.data_dir)
    log("energy report, deployment plan and latency")
    write_report(runs["emulator"], out, also_runs=[runs["lava"]] if lava else [], chip=chip)
    row = _row(config, records, torch_run, json.loads((out / "energy.json").read_text()),
               json.loads((out / "train.json").read_text()))
    write_json(done, row)
    log(f"done: emulator accuracy {row['accuracy_emulator']:.4f}, "
        f"{row['energy_j'].get('loihi SNN', float('nan')):.3e} J, files in {out}")
    return row


def _finished(path: Path, lava: bool) -> bool:
    """The cell has its row, with a Lava accuracy if one is asked for."""
    return path.is_file() and not (lava and json.loads(path.read_text())["accuracy_lava"] is None)


def _row(config: Any, records: dict[str, dict[str, Any]], torch_run: dict[str, Any],
         energy: dict[str, Any], trained: dict[str, Any]) -> dict[str, Any]:
    emu = records["emulator"]
    timing = energy["deployment"]["timing"]
    plan = energy["deployment"]["plan"] or {}
    lava = records.get("lava")
    return {
        "format": CELL_FORMAT, "timesteps": config.timesteps, "seed": config.seed,
        "dataset": config.dataset, "samples": emu["samples"],
        "accuracy_quantized_pytorch": trained["test_accuracy_quantized_pytorch"],
        "accuracy_emulator": emu["accuracy"],
        "accuracy_lava": lava["accuracy"] if lava else None,
        "pytorch_equals_emulator": torch_run["predictions"] == emu["predictions"],
        "spikes_per_inference": energy["counts_per_inference"]["total"]["spikes"],
        "synops_per_inference": energy["counts_per_inference"]["total"]["synops"],
        "energy_j": {e["label"]: e["j_per_inference"] for e in energy["estimates"]},
        "chip": timing["chip"], "cores": plan.get("total_cores"), "chips": plan.get("chips"),
        "latency_s": timing.get("latency_s"), "time_per_step_s": timing.get("time_per_step_s"),
        "inferences_per_s": timing.get("inferences_per_s"),
        "latency_reason": timing.get("reason"),
        "energy_delay_j_s": energy["energy_delay"]["j_s"],
        "train_config": trained["config"],
    }


def run_sweep(cells: list[tuple[int, int]], out: Path, launch: Callable[[int, int], int],
              lava: tuple[int, ...] = (), log: Callable[[str], None] = print
              ) -> list[dict[str, Any]]:
    """Run every unfinished cell with ``launch(T, seed)`` (its own process; returns the exit
    status), reuse finished ones; return the rows in ``cells`` order. A finished cell of a T
    in ``lava`` without a Lava run is continued (only the Lava run and its report are new)."""
    rows = []
    for i, (timesteps, seed) in enumerate(cells, 1):
        where = cell_dir(out, timesteps, seed)
        tag = f"[{i}/{len(cells)}] T={timesteps} seed={seed}"
        if _finished(where / CELL_FILE, timesteps in lava):
            log(f"{tag}: finished, reused ({where / CELL_FILE})")
        else:
            log(f"{tag}: running in {where}")
            status = launch(timesteps, seed)
            if status != 0 or not _finished(where / CELL_FILE, timesteps in lava):
                raise SlssnnError(f"sweep cell T={timesteps},seed={seed} failed (exit status "
                                  f"{status}); run the sweep again to continue from there")
        rows.append(json.loads((where / CELL_FILE).read_text()))
    return rows


def finished_rows(out: Path) -> list[dict[str, Any]]:
    """The rows of every finished cell under ``out``, by T then seed."""
    rows = []
    for path in sorted(Path(out).glob(f"T*-seed*/{CELL_FILE}")):
        row = json.loads(path.read_text())
        if not isinstance(row, dict) or row.get("format") != CELL_FORMAT:
            raise SlssnnError(f"sweep cell {path}: not a cell record (field 'format')")
        rows.append(row)
    if not rows:
        raise SlssnnError(f"sweep folder {out}: no finished cells (T*-seed*/{CELL_FILE})")
    return sorted(rows, key=lambda r: (r["timesteps"], r["seed"]))
