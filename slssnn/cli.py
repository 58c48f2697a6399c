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
    from tqdm import tqdm

    state: dict[str, Any] = {}

    def update(done: int, total: int) -> None:
        bar = state.setdefault("bar", tqdm(total=total, desc=desc, unit=unit))
        bar.update(done - bar.n)
        if done >= total:
            bar.close()

    return update


def _timesteps(args: argparse.Namespace) -> int:
    """``--timesteps``, or the T the dataset's model is meant for (README table)."""
    from slssnn.training.zoo import DEFAULT_TIMESTEPS

    return args.timesteps if args.timesteps is not None else DEFAULT_TIMESTEPS.get(args.dataset, 4)


def _prepare_training(args: argparse.Namespace) -> int:
    """Before any training: refuse an unknown dataset or a model that cannot be exported to
    netx (the untrained model is exported to a temporary file), fetch files on
    ``--download``. Returns T."""
    import tempfile

    from slssnn.export.netx_writer import export_network
    from slssnn.training.datasets import check_name, fetch
    from slssnn.training.models import MODEL_CONFIGS, build_model

    check_name(args.dataset)
    if args.dataset not in MODEL_CONFIGS:
        raise SlssnnError(f"no model for dataset {args.dataset!r}; models: "
                          + ", ".join(sorted(MODEL_CONFIGS)))
    timesteps = _timesteps(args)
    with tempfile.TemporaryDirectory(prefix="slssnn-preflight-") as tmp:
        try:
            model = build_model(MODEL_CONFIGS[args.dataset](timesteps))
            export_network(model, Path(tmp) / "untrained.net")
        except (SlssnnError, ValueError) as exc:
            raise SlssnnError(f"model {args.dataset!r} cannot be exported to netx, refused "
                              f"before training: {exc}") from exc
    if args.download:
        fetch(args.dataset, args.data_dir)
    return timesteps


# --- stages -------------------------------------------------------------------------------

def cmd_train(args: argparse.Namespace) -> dict[str, Any]:
    from slssnn.training.distributed import is_main_process
    from slssnn.training.trainer import TrainConfig, train

    out = _output_dir(args.out)
    timesteps = _prepare_training(args)
    config = TrainConfig(dataset=args.dataset, timesteps=timesteps, epochs=args.epochs,
                         batch_size=args.batch_size, lr=args.lr, seed=args.seed,
                         data_dir=args.data_dir, out_dir=str(out), **_trainer_options(args))
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
             "label_smoothing", "limit_train", "validation", "grad_shards", "device")
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
    if args.dataset is None:
        from slssnn.export.netx_reader import read_network
        from slssnn.training.datasets import DATASETS

        metadata = read_network(args.network).metadata
        named = metadata.get("dataset")
        if named not in DATASETS:
            what = ("has no slssnn metadata" if not metadata
                    else f"was trained on dataset {named!r}, which slssnn does not know")
            raise SlssnnError(f"network {args.network} {what}; give --dataset NAME")
        args.dataset = named
    if args.download:
        from slssnn.training.datasets import fetch

        fetch(args.dataset, args.data_dir)
    record = run_network(args.network, args.dataset, args.backend, limit=args.limit,
                         on_progress=_progress_bar(f"{args.backend} run", "step"),
                         timeout=args.timeout, data_dir=args.data_dir)
    write_json(out, record)
    print(f"{args.backend}: accuracy {record['accuracy']:.4f} on {record['samples']} samples "
          f"in {record['wall_seconds']:.1f} s; wrote {out}")
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
    summary = write_report(run_path, out, models, measured, also_runs=args.run[1:])
    _print_energy(summary)
    return summary


def _print_energy(summary: dict[str, Any]) -> None:
    from slssnn.energy import format_summary

    print(format_summary(summary))


def cmd_inspect(args: argparse.Namespace) -> None:
    from slssnn.export.netx_reader import read_network

    net = read_network(args.network)
    print(f"{net.path}: valid netx network, {len(net.layers)} blocks")
    print(f"{'layer':>5} {'type':7} {'shape':>14} {'neurons':>8} {'weights':>16} "
          f"{'vThMant':>8} {'iDecay':>6} {'vDecay':>6} {'bias':>5}")
    for spec in net.layers:
        weights = "-" if spec.weight is None else "x".join(str(d) for d in spec.weight.shape)
        print(f"{spec.index:>5} {spec.type:7} {str(spec.shape):>14} {spec.neurons:>8} "
              f"{weights:>16} {spec.neuron.threshold:>8} {spec.neuron.i_decay:>6} "
              f"{spec.neuron.v_decay:>6} {'yes' if spec.bias is not None else 'no':>5}")
    for key in ("timesteps", "dataset", "readout"):
        if key in net.metadata:
            print(f"{key}: {net.metadata[key]}")


def cmd_pipeline(args: argparse.Namespace) -> None:
    from slssnn.atomic import write_json
    from slssnn.energy.report import write_report
    from slssnn.export.netx_writer import export_network
    from slssnn.lava_runtime.run import pytorch_record, run_network
    from slssnn.training.checkpoint import load_checkpoint
    from slssnn.training.trainer import TrainConfig, train

    out = _output_dir(args.out)
    timesteps = _prepare_training(args)
    print(f"[1/4] train {args.dataset}, T={timesteps}")
    train(TrainConfig(dataset=args.dataset, timesteps=timesteps, epochs=args.epochs,
                      seed=args.seed, data_dir=args.data_dir, out_dir=str(out)))
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
                       help="folder with the dataset's official files (README table); "
                            "digits and digits-dvs need none")
        p.add_argument("--download", action="store_true",
                       help="first download the official files into --data-dir (needs "
                            "torchvision and network; fashion-mnist, cifar10, cifar100)")

    def common_train(p: argparse.ArgumentParser) -> None:
        p.add_argument("--dataset", default="digits",
                       help="dataset to train on (default: digits, bundled with scikit-learn)")
        p.add_argument("--timesteps", "-T", type=_positive_int, default=None,
                       help="time steps T per sample; event data is binned into T frames "
                            "(default: the T of the dataset's model, README table; 4 for digits)")
        data_options(p)
        p.add_argument("--epochs", type=_positive_int, default=30,
                       help="training epochs (default: 30)")
        p.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")

    p = sub.add_parser("train", help="train a network; writes checkpoint.pt and train.json",
                       description="Train an STCB network with quantization-aware training.")
    common_train(p)
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
    p.add_argument("--limit-train", type=_positive_int, default=None, metavar="N",
                   help="train on the first N training samples only (quick runs)")
    p.add_argument("--validation", action="store_true", default=None,
                   help="hold out 10%% of the training split (stratified, seed 0), train on the "
                        "rest and evaluate on it; the test split is not read (recipe choices)")
    p.add_argument("--grad-shards", type=_positive_int, default=None, metavar="K",
                   help="sum each batch's gradient over K contiguous parts in order (default: "
                        "the number of torchrun processes); one process with K reproduces a "
                        "K-process torchrun run bit for bit")
    p.add_argument("--device", default=None,
                   help="cpu (default), cuda or cuda:N; under torchrun, cuda means "
                        "cuda:LOCAL_RANK")
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

    p = sub.add_parser("run", help="run a network on a dataset's test split, count activity",
                       description="Run the test split through a netx network; write accuracy, "
                                   "predictions and per-layer spikes/synops/neuron updates.")
    p.add_argument("network", help="netx HDF5 network (.net)")
    p.add_argument("--dataset", default=None,
                   help="dataset whose test split to run (default: the network's own, from its "
                        "metadata)")
    data_options(p)
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
    measure_options(p)
    p.set_defaults(func=cmd_energy)

    p = sub.add_parser("inspect", help="validate a netx network and print its layers",
                       description="Validate a netx HDF5 file against slssnn's schema and print "
                                   "its layer table; exit 0 if valid, 2 if not.")
    p.add_argument("network", help="netx HDF5 network (.net)")
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
