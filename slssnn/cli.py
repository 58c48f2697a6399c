"""The ``slssnn`` command line: one subcommand per stage, and ``pipeline`` for all of them.

Bad input ends with one line on stderr naming the problem and exit status 2;
``--debug`` shows the traceback instead.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from slssnn.errors import SlssnnError
from slssnn.lava_runtime.isolation import LavaInterrupted

EXIT_USAGE = 2
EXIT_INTERRUPTED = 130


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be > 0, got {text}")
    return value


def _output_file(path: str) -> Path:
    """Check that ``path`` can be written as a file (its folder exists, it is not a folder)."""
    from slssnn.atomic import writable_file

    return writable_file(path)


def _output_dir(path: str) -> Path:
    out = Path(path)
    if out.exists() and not out.is_dir():
        raise SlssnnError(f"output folder {out} exists and is not a folder")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise SlssnnError(f"output folder {out}: cannot create ({exc.strerror})") from None
    return out


def _progress_bar(desc: str, unit: str):  # -> callable(done, total)
    from slssnn.progress import progress_bar

    return progress_bar(desc, unit)


def _timesteps(args: argparse.Namespace) -> int:
    """``--timesteps``, or the T the dataset's model is meant for (docs/datasets.md)."""
    from slssnn.training.zoo import DEFAULT_TIMESTEPS

    return args.timesteps if args.timesteps is not None else DEFAULT_TIMESTEPS.get(args.dataset, 4)


def _data_source(args: argparse.Namespace) -> str:
    """The dataset a command reads: ``--data FILE.npz`` (its path) or ``--dataset NAME``."""
    if getattr(args, "data", None) is not None:
        from slssnn.training.datasets import is_data_file

        if not is_data_file(args.data):
            raise SlssnnError(f"--data {args.data}: expected a .npz file (x_train, y_train, "
                              "x_test, y_test; docs/datasets.md)")
        return args.data
    return args.dataset


def _model_timesteps(args: argparse.Namespace, model: Any, data: Any) -> int:
    """T of a run: the model file's, else a data file's event frames', else ``--timesteps`` or
    the default; a ``--timesteps`` that contradicts the model file is refused."""
    from slssnn.training.datasets import EVENTS, is_data_file
    from slssnn.training.zoo import DATA_FILE_TIMESTEPS

    if model is not None:
        if args.timesteps is not None and args.timesteps != model.timesteps:
            raise SlssnnError(f"--timesteps {args.timesteps} differs from model file "
                              f"{args.model}: field 'timesteps' is {model.timesteps}")
        return model.timesteps
    if is_data_file(args.dataset):
        if args.timesteps is not None:
            return args.timesteps
        return data.train.images.shape[1] if data.kind == EVENTS else DATA_FILE_TIMESTEPS
    return _timesteps(args)


def _prepare_training(args: argparse.Namespace, **options: Any) -> Any:
    """Before any training: resolve the data (``--dataset`` / ``--data``), the model
    (``--model`` or the dataset's) and T; refuse an unknown dataset, a malformed data or
    model file, a model that does not fit the data, or one that cannot be exported to
    netx (the untrained model is exported to a temporary file); fetch files on
    ``--download``. Returns the run's TrainConfig (``options`` go into it)."""
    import tempfile

    from slssnn.export.netx_writer import export_network
    from slssnn.training.datasets import check_name, fetch, is_data_file, load_dataset
    from slssnn.training.models import MODEL_CONFIGS, ModelConfig, build_model, load_model_config
    from slssnn.training.trainer import TrainConfig, resolve_model_config
    from slssnn.training.zoo import check_fits

    args.dataset = _data_source(args)
    check_name(args.dataset)
    model = load_model_config(args.model) if args.model else None
    if model is not None and getattr(args, "cell", None):  # a sweep cell: its own T
        model = ModelConfig.from_dict({**model.to_dict(), "timesteps": args.timesteps})
    if model is None and not is_data_file(args.dataset) and args.dataset not in MODEL_CONFIGS:
        raise SlssnnError(f"no model for dataset {args.dataset!r}; give --model MODEL.json "
                          "(models: " + ", ".join(sorted(MODEL_CONFIGS)) + ")")
    data = None
    if is_data_file(args.dataset):  # small enough to check in full before training
        data = load_dataset(args.dataset, None, model.timesteps if model else args.timesteps)
    timesteps = _model_timesteps(args, model, data)
    config = TrainConfig(dataset=args.dataset, timesteps=timesteps, epochs=args.epochs,
                         seed=args.seed, data_dir=args.data_dir, out_dir=str(args.out),
                         model=model.to_dict() if model else None, **options)
    model_config = resolve_model_config(config, data)
    if data is not None:
        check_fits(model_config, data)
    with tempfile.TemporaryDirectory(prefix="slssnn-preflight-") as tmp:
        try:
            export_network(build_model(model_config), Path(tmp) / "untrained.net")
        except (SlssnnError, ValueError) as exc:
            raise SlssnnError(f"model {model_config.name!r} cannot be exported to netx, "
                              f"refused before training: {exc}") from exc
    if args.download:
        fetch(args.dataset, args.data_dir)
    return config


# --- stages -------------------------------------------------------------------------------

def cmd_train(args: argparse.Namespace) -> dict[str, Any]:
    from slssnn.training.distributed import is_main_process
    from slssnn.training.trainer import train

    out = _output_dir(args.out)
    config = _prepare_training(args, batch_size=args.batch_size, lr=args.lr,
                               **_trainer_options(args))
    result = train(config, resume=args.resume)
    if is_main_process():  # under torchrun, rank 0 reports
        kind = "validation" if config.validation else "test"
        print(f"quantized {kind} accuracy (PyTorch): "
              f"{result[f'{kind}_accuracy_quantized_pytorch']:.4f}")
        print(f"wrote {out / 'checkpoint.pt'} and {out / 'train.json'}")
    return result


def _trainer_options(args: argparse.Namespace) -> dict[str, Any]:
    """Optimizer, schedule, loss and device options given on the command line (others:
    TrainConfig's defaults)."""
    names = ("optimizer", "weight_decay", "momentum", "nesterov", "warmup_epochs",
             "label_smoothing", "logit_scale", "shift_fraction", "max_shift", "limit_train",
             "validation", "grad_shards", "device")
    return {n: getattr(args, n) for n in names if getattr(args, n) is not None}


def cmd_export(args: argparse.Namespace) -> None:
    from slssnn.export.netx_writer import export_network
    from slssnn.training.checkpoint import load_checkpoint

    out = _output_file(args.output)
    model, record = load_checkpoint(args.checkpoint)
    provenance = {"checkpoint": str(Path(args.checkpoint).resolve()),
                  "train_config": record.get("config", {}),
                  "test_accuracy_quantized_pytorch": record.get("test_accuracy_quantized_pytorch")}
    if args.format == "nir":
        _export_nir(model, out, provenance)
        return
    net = export_network(model, out, provenance)
    _print_clamps(net.metadata)
    print(f"wrote {out} ({len(net.layers)} blocks)")


def _print_clamps(metadata: dict[str, Any]) -> None:
    """The export's clamp counts per block (network metadata field 'clamps')."""
    clamps = metadata.get("clamps", [])
    parts = [f"{c['name']} bias {c['bias']}, threshold {c['threshold']}" for c in clamps]
    total = sum(c["bias"] + c["threshold"] for c in clamps)
    print(f"clamped onto Loihi's range: {total} value(s)"
          + (f" ({'; '.join(parts)})" if parts else ""))


def _export_nir(model: Any, out: Path, provenance: dict[str, Any]) -> None:
    """The checkpoint's netx integers (as 'export' writes them), as a NIR graph."""
    import tempfile

    from slssnn.export.netx_writer import export_network
    from slssnn.export.nir_export import convert_netx_to_nir

    with tempfile.TemporaryDirectory(dir=out.parent) as tmp:
        net_path = Path(tmp) / "network.net"
        export_network(model, net_path, provenance)
        graph = convert_netx_to_nir(net_path, out)
    print(f"wrote {out} (NIR graph, {len(graph.nodes)} nodes)")


def cmd_convert(args: argparse.Namespace) -> None:
    """netx -> NIR, or NIR -> netx on Loihi's grid (with the per-layer quantization report)."""
    from slssnn.export.nir_export import convert_netx_to_nir
    from slssnn.export.nir_import import convert_nir_to_netx, read_nir

    out = _output_file(args.output)
    source = Path(args.source)
    if not source.is_file():
        raise SlssnnError(f"{source}: no such file")
    if _is_nir(source):
        if args.dt is not None and args.dt <= 0:
            raise SlssnnError(f"--dt must be > 0 seconds, got {args.dt}")
        result = convert_nir_to_netx(read_nir(source), out, args.timesteps, args.dt)
        print(result.format_report())
        print(f"wrote {out} (netx, {len(result.network.layers)} blocks)")
        return
    graph = convert_netx_to_nir(source, out, args.dt if args.dt is not None else 1e-4)
    print(f"wrote {out} (NIR graph, {len(graph.nodes)} nodes)")


def _is_nir(path: Path) -> bool:
    """A NIR file holds a top-level 'node' group; a netx file a 'layer' group."""
    import h5py

    try:
        with h5py.File(path, "r") as handle:
            return "node" in handle and "layer" not in handle
    except OSError:
        raise SlssnnError(f"{path}: not an HDF5 file (netx or NIR)") from None


def cmd_run(args: argparse.Namespace) -> dict[str, Any]:
    from slssnn.atomic import write_json
    from slssnn.lava_runtime.run import run_network

    out = _output_file(args.output)
    if args.input is not None:
        if args.timesteps is not None or args.input_scale is not None \
                or args.readout != "spikes":
            raise SlssnnError("--timesteps, --input-scale and --readout are for a dataset; an "
                              "--input array is run as it is (its last axis is time)")
        return _run_input(args, out)
    args.dataset = _data_source(args)
    if args.dataset is None:
        from slssnn.export.netx_reader import read_network
        from slssnn.training.datasets import DATASETS

        metadata = read_network(args.network).metadata
        trained = metadata.get("provenance", {}).get("train_config", {})
        named = trained.get("dataset", metadata.get("dataset"))
        if named not in DATASETS:
            what = ("has no slssnn metadata" if not metadata
                    else f"was trained on {named!r}, not a dataset slssnn knows by name")
            raise SlssnnError(f"network {args.network} {what}; give --dataset NAME or "
                              "--data FILE.npz")
        args.dataset = named
    if args.download:
        from slssnn.training.datasets import fetch

        fetch(args.dataset, args.data_dir)
    record = run_network(args.network, args.dataset, args.backend, limit=args.limit,
                         on_progress=_progress_bar(f"{args.backend} run", "step"),
                         timeout=args.timeout, data_dir=args.data_dir,
                         timesteps=args.timesteps, input_scale=args.input_scale,
                         readout=args.readout)
    write_json(out, record)
    print(f"{args.backend}: accuracy {record['accuracy']:.4f} on {record['samples']} samples "
          f"in {record['wall_seconds']:.1f} s; wrote {out}")
    return record


def _run_input(args: argparse.Namespace, out: Path) -> dict[str, Any]:
    """``slssnn run NET --input FILE.npy``: any netx network on the user's own array."""
    from slssnn.atomic import write_json
    from slssnn.lava_runtime.run import load_input_array, run_input

    if args.dataset is not None or getattr(args, "data", None) is not None:
        raise SlssnnError("give either --input or --dataset/--data, not both")
    record = run_input(args.network, load_input_array(args.input), args.backend,
                       source=f"input {args.input}", num_layers=args.num_layers,
                       spike_exp=args.spike_exp, reset_interval=args.reset_interval,
                       timeout=args.timeout)
    write_json(out, record)
    total = sum(layer["spikes"] for layer in record["layers"])
    print(f"{args.backend}: {record['samples']} sample(s) x {record['timesteps']} steps, "
          f"{total / record['samples']:.1f} messages per sample, in "
          f"{record['wall_seconds']:.1f} s; wrote {out}")
    return record


def _batch_sizes(text: str) -> tuple[int, ...]:
    return tuple(_positive_int(part) for part in text.split(","))


def _measure(checkpoint: Path, run_path: Path, args: argparse.Namespace) -> dict[str, Any]:
    """Measured GPU/CPU energy of ``checkpoint`` (the network of the run at ``run_path``)."""
    from slssnn.energy.measure import MeasureSettings
    from slssnn.energy.measured import measure_checkpoint
    from slssnn.energy.runfile import load_run

    settings = MeasureSettings(window_s=args.window, repeats=args.repeats)
    return measure_checkpoint(checkpoint, load_run(run_path), str(run_path), args.batch_sizes,
                              settings, log=lambda line: print(f"  measured {line}"),
                              data_dir=getattr(args, "data_dir", None))


def cmd_energy(args: argparse.Namespace) -> dict[str, Any]:
    from slssnn.energy import builtin_models, load_device_model
    from slssnn.energy.report import write_report

    out = _output_dir(args.out)
    models = [*builtin_models().values(), *map(load_device_model, args.device_model)]
    run_path = Path(args.run[0])
    measured = _measure(Path(args.measure_gpu), run_path, args) if args.measure_gpu else None
    summary = write_report(run_path, out, models, measured, also_runs=args.run[1:],
                           chip=args.chip)
    _print_energy(summary)
    return summary


def _print_energy(summary: dict[str, Any]) -> None:
    from slssnn.energy import format_summary

    print(format_summary(summary))


def cmd_plan(args: argparse.Namespace) -> dict[str, Any]:
    """Map the network onto a chip's cores; with a run record, the time per step and latency."""
    from slssnn.atomic import write_json
    from slssnn.energy.chips import load_chip
    from slssnn.energy.plan import plan_network
    from slssnn.energy.plan_text import format_plan
    from slssnn.energy.runfile import load_run
    from slssnn.energy.timing import estimate_timing
    from slssnn.export.netx_reader import read_network

    out = _output_file(args.output) if args.output else None
    chip = load_chip(args.chip)
    plan = plan_network(read_network(args.network, args.num_layers), chip)
    timing = estimate_timing(plan, load_run(args.run), chip) if args.run else None
    print(format_plan(plan, chip, timing))
    result = {"plan": plan, "timing": timing, "chip": chip.to_dict()}
    if out is not None:
        write_json(out, result)
        print(f"wrote {out}")
    if not plan["placeable"]:
        raise SlssnnError(f"network {args.network} cannot be placed on {chip.name}: "
                          + "; ".join(plan["problems"]))
    return result


def _int_list(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected integers like 1,2,4, got {text!r}") from None


def _launch_cell(args: argparse.Namespace, timesteps: int, seed: int) -> int:
    """Run one sweep cell as its own process: this command line plus --cell; its status."""
    import subprocess

    command = [sys.executable, "-m", "slssnn", *args.argv, "--cell", f"T={timesteps},seed={seed}"]
    return subprocess.run(command, preexec_fn=_die_with_parent).returncode


def _die_with_parent() -> None:
    """In a child process: receive SIGTERM when the sweep that started it dies (Linux)."""
    import ctypes
    import signal

    try:
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def cmd_sweep(args: argparse.Namespace) -> None:
    """Train, export and evaluate each (T, seed) cell; the table, Pareto front and plot."""
    from slssnn.sweep import cell_dir, finished_rows, parse_cell, run_cell, run_sweep
    from slssnn.sweep_report import render_markdown, summarize, write_sweep

    out = _output_dir(args.out)
    if args.cell:
        timesteps, seed = parse_cell(args.cell)
        cell_args = argparse.Namespace(**{**vars(args), "timesteps": timesteps, "seed": seed,
                                          "out": cell_dir(out, timesteps, seed)})
        config = _prepare_training(cell_args, batch_size=args.batch_size, lr=args.lr,
                                   **_trainer_options(args))
        run_cell(config, lava=timesteps in args.lava, chip=args.chip, limit=args.limit,
                 log=lambda line: print(f"T={timesteps} seed={seed}: {line}", flush=True))
        return
    if not args.collect:
        if any(t < 1 for t in args.timesteps) or not args.timesteps or not args.seeds:
            raise SlssnnError("--timesteps needs integers >= 1 and --seeds at least one seed")
        cells = [(t, s) for t in args.timesteps for s in args.seeds]
        run_sweep(cells, out, lambda t, s: _launch_cell(args, t, s), lava=args.lava,
                  log=lambda line: print(line, flush=True))
    rows = finished_rows(out)
    seeds = sorted({r["seed"] for r in rows})
    title = (f"{rows[0]['dataset']}: accuracy, energy and latency per T (seeds "
             f"{', '.join(map(str, seeds))}; {rows[0]['samples']} test samples)")
    files = write_sweep(rows, out, title, command="slssnn " + " ".join(args.argv))
    print(render_markdown(summarize(rows), title).split("\n", 3)[3].strip())  # no title, image
    print("wrote " + ", ".join(str(f) for f in files.values()))


def cmd_inspect(args: argparse.Namespace) -> None:
    from slssnn.export.netx_reader import read_network

    net = read_network(args.network, args.num_layers)
    print(f"{net.path}: valid netx network, {len(net.layers)} blocks, input "
          f"{net.input_shape}")
    print(f"{'layer':>5} {'type':9} {'shape':>14} {'neurons':>8} {'weights':>16} "
          f"{'neuron':>11} {'vThMant':>8} {'iDecay':>6} {'vDecay':>6} {'bias':>5} {'delay':>5}")
    for spec in net.layers:
        weights = "-" if spec.weight is None else "x".join(str(d) for d in spec.weight.shape)
        if spec.weight_rec is not None:
            weights += "+rec"
        if spec.weight_imag is not None:
            weights += " cplx"
        n = spec.neuron
        kind = n.role if spec.is_sigma_delta else n.kind
        decays = (n.i_decay, n.v_decay) if hasattr(n, "i_decay") else ("-", "-")
        print(f"{spec.index:>5} {spec.type:9} {str(spec.shape):>14} {spec.neurons:>8} "
              f"{weights:>16} {kind:>11} {n.threshold:>8} {decays[0]:>6} {decays[1]:>6} "
              f"{'yes' if spec.bias is not None else 'no':>5} "
              f"{'yes' if spec.delay is not None else 'no':>5}")
    for key in ("timesteps", "dataset", "readout"):
        if key in net.metadata:
            print(f"{key}: {net.metadata[key]}")


def cmd_pipeline(args: argparse.Namespace) -> None:
    from slssnn.atomic import write_json
    from slssnn.energy.report import write_report
    from slssnn.export.netx_writer import export_network
    from slssnn.lava_runtime.run import pytorch_record, run_network
    from slssnn.training.checkpoint import load_checkpoint
    from slssnn.training.trainer import train

    out = _output_dir(args.out)
    config = _prepare_training(args)
    print(f"[1/4] train {args.dataset}, T={config.timesteps}")
    train(config)
    model, record = load_checkpoint(out / "checkpoint.pt")
    print("[2/4] export netx HDF5")
    net_path = out / "network.net"
    net = export_network(model, net_path, {"checkpoint": str((out / "checkpoint.pt").resolve()),
                                           "train_config": record["config"]})
    _print_clamps(net.metadata)
    print("[3/4] run the test split in Lava (one run, compiled once)")
    lava = run_network(net_path, args.dataset, "lava", limit=args.limit,
                       on_progress=_progress_bar("lava", "step"), data_dir=args.data_dir)
    write_json(out / "run-lava.json", lava)
    torch_run = pytorch_record(model, net_path, args.dataset, limit=args.limit,
                               data_dir=args.data_dir)
    write_json(out / "run-pytorch.json", torch_run)
    write_json(out / "run-emulator.json", run_network(net_path, args.dataset, "emulator",
                                                      limit=args.limit, data_dir=args.data_dir))
    print("[4/4] energy report" + (" (measuring the GPU and CPU)" if args.measure_gpu else ""))
    measured = _measure(out / "checkpoint.pt", out / "run-lava.json", args) \
        if args.measure_gpu else None
    summary = write_report(out / "run-lava.json", out, measured=measured,
                           also_runs=[out / "run-emulator.json", out / "run-pytorch.json"])
    _print_summary(out, torch_run, lava, summary)


def _print_summary(out: Path, torch_run: dict[str, Any], lava: dict[str, Any],
                   energy: dict[str, Any]) -> None:
    same_predictions = sum(a == b for a, b in zip(torch_run["predictions"], lava["predictions"],
                                                  strict=True))
    n = lava["samples"]
    print()
    print(f"accuracy: PyTorch (quantized) {torch_run['accuracy']:.4f}   "
          f"Lava {lava['accuracy']:.4f}   ({n} test samples, T={lava['timesteps']})")
    print(f"predictions identical: {same_predictions}/{n}")
    print(f"{'layer':10} {'spikes PyTorch':>15} {'spikes Lava':>12} {'same':>5} "
          f"{'spikes/inf':>11} {'synops/inf':>11}")
    for a, b in zip(torch_run["layers"], lava["layers"], strict=True):
        print(f"{b['name']:10} {a['spikes']:>15} {b['spikes']:>12} "
              f"{'yes' if a['spikes'] == b['spikes'] and a['synops'] == b['synops'] else 'NO':>5} "
              f"{b['spikes'] / n:>11.1f} {b['synops'] / n:>11.1f}")
    print(f"total spikes/inference {sum(x['spikes'] for x in lava['layers']) / n:.1f}, "
          f"synops/inference {sum(x['synops'] for x in lava['layers']) / n:.1f}")
    print("energy per inference:")
    _print_energy(energy)
    print(f"files in {out}: checkpoint.pt train.json network.net run-lava.json run-pytorch.json "
          "run-emulator.json energy.json energy.md energy.png")


# --- parser -------------------------------------------------------------------------------

class _Parser(argparse.ArgumentParser):
    """argparse with one-line errors (``slssnn: error: ...``, exit 2) instead of usage dumps."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(EXIT_USAGE, f"slssnn: error: {self.prog}: {message} (see --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="slssnn",
        description="Train spike-train level SNNs (STCB) in PyTorch, export them as lava-dl "
                    "netx HDF5, run them in Lava's CPU simulator and report energy.")
    parser.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND",
                                parser_class=_Parser)

    def measure_options(p: argparse.ArgumentParser) -> None:
        p.add_argument("--batch-sizes", type=_batch_sizes, default=(1, 256), metavar="N,N",
                       help="batch sizes to measure at (default 1,256)")
        p.add_argument("--window", type=_positive_float, default=3.0, metavar="SECONDS",
                       help="length of each measurement window (default 3)")
        p.add_argument("--repeats", type=_positive_int, default=5,
                       help="measurement windows per batch size (default 5)")

    def data_options(p: argparse.ArgumentParser) -> None:
        p.add_argument("--data-dir", default=None, metavar="DIR",
                       help="folder with the dataset's official files (docs/datasets.md); "
                            "digits and digits-dvs need none")
        p.add_argument("--download", action="store_true",
                       help="first download the official files into --data-dir (needs "
                            "torchvision and network; fashion-mnist, cifar10, cifar100)")

    def data_source(p: argparse.ArgumentParser, dataset_help: str, default: str | None) -> None:
        group = p.add_mutually_exclusive_group()
        group.add_argument("--dataset", default=default, help=dataset_help)
        group.add_argument("--data", default=None, metavar="FILE.npz",
                           help="your own data: arrays x_train, y_train, x_test, y_test "
                                "(images uint8 (N,H,W) or (N,C,H,W), event frames "
                                "(N,T,2,H,W) 0/1; docs/datasets.md)")

    def trainer_options(p: argparse.ArgumentParser) -> None:
        """Options of the training recipe, shared by 'train' and 'sweep' (each reaches
        TrainConfig through _train_config)."""
        p.add_argument("--batch-size", type=_positive_int, default=32,
                       help="global batch size, all torchrun processes together (default 32)")
        p.add_argument("--lr", type=_positive_float, default=3e-3,
                       help="peak learning rate (default 3e-3)")
        p.add_argument("--optimizer", choices=("adamw", "sgd"), default=None,
                       help="adamw (default) or sgd (with --momentum, --nesterov)")
        p.add_argument("--weight-decay", type=float, default=None, metavar="WD",
                       help="decoupled (AdamW) or L2 (SGD) weight decay (default: the recipe's)")
        p.add_argument("--momentum", type=float, default=None, help="SGD momentum (default 0.9)")
        p.add_argument("--nesterov", action="store_true", default=None,
                       help="SGD with Nesterov momentum")
        p.add_argument("--warmup-epochs", type=float, default=None, metavar="E",
                       help="linear learning-rate warm-up over E epochs before the cosine decay "
                            "(default 0)")
        p.add_argument("--label-smoothing", type=float, default=None, metavar="EPS",
                       help="cross-entropy label smoothing in [0, 1) (default 0)")
        p.add_argument("--logit-scale", type=float, default=None, metavar="S",
                       help="the loss reads output spike counts as logits counts * S / T "
                            "(default 10)")
        p.add_argument("--shift-fraction", type=float, default=None, metavar="F",
                       help="augmentation: the fraction of each batch moved by a random offset "
                            "(default 0.5)")
        p.add_argument("--max-shift", type=int, default=None, metavar="PIXELS",
                       help="augmentation: the largest offset in pixels, rows and columns "
                            "(default 1)")
        p.add_argument("--limit-train", type=_positive_int, default=None, metavar="N",
                       help="train on the first N training samples only (quick runs)")
        p.add_argument("--validation", action="store_true", default=None,
                       help="hold out 10%% of the training split (stratified, seed 0), train on "
                            "the rest and evaluate on it; the test split is not read (recipe "
                            "choices)")
        p.add_argument("--grad-shards", type=_positive_int, default=None, metavar="K",
                       help="sum each batch's gradient over K contiguous parts in order (default: "
                            "the number of torchrun processes); one process with K reproduces a "
                            "K-process torchrun run bit for bit")
        p.add_argument("--device", default=None,
                       help="cpu (default), cuda or cuda:N; under torchrun, cuda means "
                            "cuda:LOCAL_RANK")

    def common_train(p: argparse.ArgumentParser) -> None:
        data_source(p, "dataset to train on (default: digits, bundled with scikit-learn)",
                    "digits")
        p.add_argument("--model", default=None, metavar="MODEL.json",
                       help="your own network: a ModelConfig as JSON (input shape, classes, "
                            "T, layers; docs/datasets.md); default: the dataset's own")
        p.add_argument("--timesteps", "-T", type=_positive_int, default=None,
                       help="time steps T per sample; event data is binned into T frames "
                            "(default: the model file's, else the T of the dataset's model, "
                            "docs/datasets.md; 4 for digits and image data files)")
        data_options(p)
        p.add_argument("--epochs", type=_positive_int, default=30,
                       help="training epochs (default: 30)")
        p.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")

    p = sub.add_parser("train", help="train a network; writes checkpoint.pt and train.json",
                       description="Train an STCB network with quantization-aware training.")
    common_train(p)
    trainer_options(p)
    p.add_argument("--out", "-o", default="runs/train", help="output folder (default runs/train)")
    p.add_argument("--resume", action="store_true",
                   help="continue the unfinished run in --out from its last epoch checkpoint "
                        "(its stored options win over the command line)")
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("export", help="write a checkpoint as a netx HDF5 network",
                       description="Quantize a checkpoint onto Loihi's grid and write it as a "
                                   "netx HDF5 file that lava-dl's netx.hdf5.Network loads.")
    p.add_argument("checkpoint", help="checkpoint.pt written by 'slssnn train'")
    p.add_argument("-o", "--output", required=True, help="network file to write (.net)")
    p.add_argument("--format", choices=("netx", "nir"), default="netx",
                   help="netx HDF5 (default) or a NIR graph (docs/nir.md)")
    p.set_defaults(func=cmd_export)

    p = sub.add_parser("convert", help="netx <-> NIR (networks from snnTorch, Norse, sinabs...)",
                       description="Convert a netx network to a NIR graph, or a NIR graph to a "
                                   "netx network quantized to Loihi's grid, printing the "
                                   "quantization error per layer. See docs/nir.md.")
    p.add_argument("source", help="netx network (.net) or NIR graph (.nir)")
    p.add_argument("-o", "--output", required=True, help="file to write (.nir or .net)")
    p.add_argument("--timesteps", "-T", type=_positive_int, default=None,
                   help="NIR -> netx: time steps T per sample, stored in the network's metadata")
    p.add_argument("--dt", type=_positive_float, default=None, metavar="SECONDS",
                   help="seconds per netx step for NIR time constants (default: the graph's "
                        "'dt' metadata, else 1e-4, snnTorch's convention)")
    p.set_defaults(func=cmd_convert)

    p = sub.add_parser("run", help="run a network on a dataset's test split or an input "
                                   "array, count activity",
                       description="Run the test split (or, with --input, your own array) "
                                   "through a netx network; write accuracy, predictions and "
                                   "per-layer spikes/synops/neuron updates.")
    p.add_argument("network", help="netx HDF5 network (.net)")
    p.add_argument("--input", default=None, metavar="FILE.npy",
                   help="run any netx network on this array instead of a dataset: Lava order "
                        "(x, y, c) or (n,), time last, optional leading batch axis; values "
                        "into the input layer, else spikes into the first synapse")
    p.add_argument("--num-layers", type=_positive_int, default=None, metavar="N",
                   help="with --input: build only the first N layer groups (netx's num_layers)")
    p.add_argument("--spike-exp", type=int, default=6,
                   help="with --input: fraction bits of sigma-delta messages (netx's spike_exp; "
                        "default 6)")
    p.add_argument("--reset-interval", type=_positive_int, default=None, metavar="STEPS",
                   help="with --input: reset LIF state every STEPS steps (netx's reset_interval)")
    data_source(p, "dataset whose test split to run (default: the network's own, from its "
                   "metadata)", None)
    data_options(p)
    p.add_argument("--timesteps", "-T", type=_positive_int, default=None,
                   help="with a dataset: steps per sample (default: the network's metadata; a "
                        "network trained elsewhere needs it)")
    p.add_argument("--input-scale", type=_positive_float, default=None, metavar="S",
                   help="with a dataset: input current round(pixel * S), pixels in the "
                        "dataset's units (mnist 0..255; default: the network's metadata; a "
                        "network trained elsewhere needs it)")
    p.add_argument("--readout", choices=("spikes", "voltage"), default="spikes",
                   help="with a dataset: predict the class with the most output spikes "
                        "(default), or the highest output voltage at the end of each sample "
                        "(a non-spiking output layer, e.g. SLAYER's Affine block)")
    p.add_argument("--backend", default="lava", choices=("lava", "emulator"),
                   help="engine: lava (Lava's CPU simulator, the reference) or emulator "
                        "(bit-exact batched emulator, CUDA when available); default lava")
    p.add_argument("--limit", type=_positive_int, default=None,
                   help="run only the first N test samples")
    p.add_argument("--timeout", type=_positive_float, default=None, metavar="SECONDS",
                   help="stop a Lava run after SECONDS (its processes and shared memory are "
                        "cleaned up; exit status 2)")
    p.add_argument("-o", "--output", required=True, help="run record to write (.json)")
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("energy", help="energy report from a run record",
                       description="Estimate energy per inference from a run's activity under "
                                   "each device model; write energy.json, energy.md, energy.png.")
    p.add_argument("run", nargs="+",
                   help="run record written by 'slssnn run' (.json); further records of the "
                        "same network from other engines must have identical counts")
    p.add_argument("-o", "--out", required=True, help="output folder")
    p.add_argument("--device-model", action="append", default=[], metavar="FILE",
                   help="add a device model JSON file (repeatable; see energy/devices/)")
    p.add_argument("--measure-gpu", metavar="CHECKPOINT", default=None,
                   help="measure the run's network (this checkpoint) as SNN and ANN twin on "
                        "the CUDA GPU (NVML energy counter) and the CPU (RAPL), where readable")
    p.add_argument("--chip", default="loihi", metavar="loihi|loihi2|FILE.json",
                   help="chip the run's network is planned on for the time per step, latency "
                        "and energy x delay (default loihi; docs/planning.md)")
    measure_options(p)
    p.set_defaults(func=cmd_energy)

    p = sub.add_parser("plan", help="map a network onto a chip's cores; time per step, latency",
                       description="Map each layer of a netx network onto neuromorphic cores "
                                   "under the chip's published limits (neurons, fan-in and "
                                   "fan-out axons, synaptic memory per core; cores per chip) "
                                   "and, with a run record, estimate the time per step, the "
                                   "latency per inference and inferences/s. See "
                                   "docs/planning.md.")
    p.add_argument("network", help="netx HDF5 network (.net)")
    p.add_argument("--run", default=None, metavar="RUN.json",
                   help="run record of this network ('slssnn run'): its activity gives the "
                        "time per step and latency")
    p.add_argument("--chip", default="loihi", metavar="loihi|loihi2|FILE.json",
                   help="built-in chip (loihi, loihi2) or a chip file (default loihi)")
    p.add_argument("--num-layers", type=_positive_int, default=None, metavar="N",
                   help="plan only the first N layer groups, as netx's num_layers builds them")
    p.add_argument("-o", "--output", default=None, metavar="PLAN.json",
                   help="also write the plan as JSON")
    p.set_defaults(func=cmd_plan)

    p = sub.add_parser("sweep", help="train and evaluate at several T: accuracy, energy, latency",
                       description="Train, export and evaluate the dataset's network at each T "
                                   "(and seed): deployed accuracy (emulator; Lava for the T in "
                                   "--lava), spikes and synaptic ops, energy per device model "
                                   "and the latency estimate per T, with the Pareto front of "
                                   "accuracy against energy; sweep.json, sweep.md, sweep.png. "
                                   "Each (T, seed) cell runs as its own process and is reused "
                                   "once finished: kill the sweep and start it again to "
                                   "continue. See docs/planning.md (Slurm job arrays).")
    data_source(p, "dataset whose network to train (default digits)", "digits")
    p.add_argument("--model", default=None, metavar="MODEL.json",
                   help="your own network: a ModelConfig as JSON (docs/datasets.md); its T is "
                        "replaced by each cell's")
    data_options(p)
    p.add_argument("--timesteps", "-T", type=_int_list, default=(1, 2, 4, 8), metavar="T,T",
                   help="the T to compare (default 1,2,4,8)")
    p.add_argument("--seeds", type=_int_list, default=(0,), metavar="S,S",
                   help="seeds per T (default 0)")
    p.add_argument("--epochs", type=_positive_int, default=30,
                   help="training epochs per cell (default: 30)")
    trainer_options(p)
    p.add_argument("--lava", type=_int_list, default=(), metavar="T,T",
                   help="also run these T in Lava's CPU simulator (slow)")
    p.add_argument("--limit", type=_positive_int, default=None,
                   help="evaluate only the first N test samples")
    p.add_argument("--chip", default="loihi", metavar="loihi|loihi2|FILE.json",
                   help="chip of the deployment plan and latency estimate (default loihi)")
    p.add_argument("--out", "-o", required=True, help="sweep folder (one subfolder per cell)")
    p.add_argument("--cell", default=None, metavar="T=N,seed=S",
                   help="run only this cell, in this process (what a cluster job runs)")
    p.add_argument("--collect", action="store_true",
                   help="train nothing: build the table from the finished cells in --out")
    p.set_defaults(func=cmd_sweep)

    p = sub.add_parser("inspect", help="validate a netx network and print its layers",
                       description="Validate a netx HDF5 file against slssnn's schema and print "
                                   "its layer table; exit 0 if valid, 2 if not.")
    p.add_argument("network", help="netx HDF5 network (.net)")
    p.add_argument("--num-layers", type=_positive_int, default=None, metavar="N",
                   help="read only the first N layer groups, as netx's num_layers does")
    p.set_defaults(func=cmd_inspect)

    p = sub.add_parser("pipeline", help="train, export, run in Lava, energy report",
                       description="Run every stage: train -> network.net -> Lava run of the "
                                   "test split -> energy report, all written into --out.")
    common_train(p)
    p.add_argument("--limit", type=_positive_int, default=None,
                   help="run only the first N test samples in Lava")
    p.add_argument("--out", "-o", required=True, help="output folder")
    p.add_argument("--measure-gpu", action="store_true",
                   help="also measure the trained network's energy on the CUDA GPU (NVML) "
                        "and the CPU (RAPL), where readable")
    measure_options(p)
    p.set_defaults(func=cmd_pipeline)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)  # a sweep starts its cells with it
    try:
        args.func(args)
    except SlssnnError as exc:
        if args.debug:
            raise
        interrupted = isinstance(exc, LavaInterrupted)
        print(f"slssnn: {'interrupted' if interrupted else 'error'}: {exc}", file=sys.stderr)
        return EXIT_INTERRUPTED if interrupted else EXIT_USAGE
    except KeyboardInterrupt:
        print("slssnn: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    return 0


if __name__ == "__main__":
    sys.exit(main())
