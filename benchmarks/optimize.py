"""What int8 quantisation, structured pruning and distillation buy on this CPU, against
float32, with ONNX Runtime in-process (no server, no sockets: the physical limit).

Two parts:

  cnn     the ResNet-18-sized CNN of benchmarks/models.py (random weights from its fixed
          seed, input [-1, 3, 224, 224]) against int8 dynamic and int8 static (calibrated
          on 32 random-normal images), each per tensor and per channel, and against 50%
          structured pruning. Random weights make accuracy meaningless, so quality is only
          the agreement of the argmax with float32's on 32 other random-normal images.
  digits  a digits CNN trained here (zoo "cnn", 8 epochs) against int8 dynamic and static
          (calibrated on its training rows), 50% structured pruning with 3 epochs of
          fine-tuning, and a student (zoo "cnn", channels [8, 16], 30 epochs, T = 2,
          alpha = 0.5) distilled from it: validation accuracy and its delta, agreement
          with the float model, and the same student trained on the labels alone, to
          show what the teacher added.

--quick: 1 round, short timings, few epochs, no per-channel models (checks the script).

Every model is exported with ``maas.training.export.export_onnx`` (float32 too, so both
sides of a ratio come from the same exporter) and loaded as a one-instance deployment
serves it: ``OnnxRuntime.load`` with ``intra_op_threads`` = the cores
(``default_intra_op_threads(1)``) and threads that stop spinning between calls.

Timing alternates: for each optimised model, float32 batch 1, the model batch 1, float32
batch 32, the model batch 32, round after round. A ratio is the median over rounds of that
round's ratio (each side the median ms/sample of its runs), because the speed of this
shared 2-core machine moves by 10-25% between runs. Ratios above 1 (slower, larger) are
printed as such. Throughput ratio = float32 ms / model ms at batch 32 (above 1: more
rows per second).

Pruning uses the job's default channel multiple (kept widths in multiples of 16, which
ONNX Runtime's CPU convolutions run fastest; ``--multiple 1`` for the exact fraction).

    .venv/bin/python benchmarks/optimize.py --quick      # smoke test, under a minute
    .venv/bin/python benchmarks/optimize.py --json optimize.json   # 5 rounds, ~3 minutes
    .venv/bin/python benchmarks/optimize.py --parts digits --rounds 9
"""

from __future__ import annotations

import argparse
import copy
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.fx

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.models import INPUT_SHAPES, _build
from benchmarks.report import command_line, write_json
from maas.optimize.distill import distillation_loss, teacher_logits
from maas.optimize.prune import prune_structured
from maas.optimize.quantize import QuantizationMethod, quantize_model
from maas.optimize.report import machine
from maas.runtimes.base import LoadOptions
from maas.runtimes.onnx import OnnxRuntime
from maas.scheduling.pool import default_intra_op_threads
from maas.training.datasets import Dataset, load_digits
from maas.training.export import export_onnx
from maas.training.trainer import TrainConfig, train
from maas.training.zoo import ClassifierHead, build_model, parameter_count

BATCHES = (1, 32)
CNN_ROWS = 32  # random-normal images: calibration, and (another draw) agreement
INT8: tuple[QuantizationMethod, ...] = ("dynamic", "static")
PRUNE_AMOUNT = 0.5
STUDENT = {"channels": [8, 16]}
TEMPERATURE, ALPHA = 2.0, 0.5
ACCURACY_NOTED = 0.01  # an accuracy drop larger than this is named in the verdict


@dataclass(frozen=True)
class Budget:
    """Seconds of timed runs per measurement, and the epochs of the digits models."""

    time_s: dict[int, float]  # batch -> seconds; a measurement runs at least once
    min_runs: dict[int, int]
    teacher_epochs: int = 8
    finetune_epochs: int = 3
    student_epochs: int = 30
    per_channel: bool = True


FULL = Budget(time_s={1: 0.25, 32: 0.5}, min_runs={1: 5, 32: 1})
QUICK = Budget(
    time_s={1: 0.05, 32: 0.1},
    min_runs={1: 3, 32: 1},
    teacher_epochs=2,
    finetune_epochs=1,
    student_epochs=3,
    per_channel=False,
)


@dataclass
class Candidate:
    """One ONNX model in the comparison; ``runtime`` is loaded once and kept."""

    name: str
    path: Path
    parameters: int
    runtime: OnnxRuntime
    logits: np.ndarray  # on the quality rows
    details: dict[str, Any] = field(default_factory=dict)
    samples: dict[int, list[float]] = field(default_factory=dict)  # batch -> ms/sample
    ratios: dict[int, list[float]] = field(default_factory=dict)  # batch -> vs float, per round


def _load(path: Path, threads: int) -> OnnxRuntime:
    return OnnxRuntime.load(path, LoadOptions(intra_op_threads=threads))


def _logits(runtime: OnnxRuntime, x: np.ndarray, chunk: int = 256) -> np.ndarray:
    parts = [
        runtime.predict({"input": x[i : i + chunk]})["logits"] for i in range(0, len(x), chunk)
    ]
    return np.concatenate(parts)


def _candidate(
    name: str, path: Path, parameters: int, threads: int, quality_rows: np.ndarray, **details: Any
) -> Candidate:
    """Load ``path``; its answers on ``quality_rows`` double as the warm-up."""
    runtime = _load(path, threads)
    runtime.predict({"input": quality_rows[:1]})
    return Candidate(name, path, parameters, runtime, _logits(runtime, quality_rows), details)


def _time(runtime: OnnxRuntime, batch: np.ndarray, budget: Budget) -> float:
    """Median ms per sample over runs for ``budget``'s seconds (batch 1: after one warm-up)."""
    size = len(batch)
    feeds = {"input": batch}
    if size == 1:
        runtime.predict(feeds)
    timings: list[float] = []
    deadline = time.perf_counter() + budget.time_s[size]
    while len(timings) < budget.min_runs[size] or time.perf_counter() < deadline:
        started = time.perf_counter()
        runtime.predict(feeds)
        timings.append(time.perf_counter() - started)
    return statistics.median(timings) * 1000.0 / size


def _race(
    part: str,
    parent: Candidate,
    others: list[Candidate],
    rows: np.ndarray,
    args: argparse.Namespace,
) -> None:
    """Time float32 and each model in alternation, ``args.rounds`` times."""
    batches = {
        size: np.ascontiguousarray(np.resize(rows, (size, *rows.shape[1:]))) for size in BATCHES
    }
    print(f"{part}: ms/sample of the model / of float32 = ratio, alternated", flush=True)
    width = max(len(other.name) for other in others)
    for round_ in range(1, args.rounds + 1):
        for other in others:
            line = []
            for size, batch in batches.items():
                ours = _time(parent.runtime, batch, args.budget)
                theirs = _time(other.runtime, batch, args.budget)
                parent.samples.setdefault(size, []).append(ours)
                other.samples.setdefault(size, []).append(theirs)
                other.ratios.setdefault(size, []).append(theirs / ours)
                line.append(f"b{size} {theirs:8.4f} / {ours:8.4f} = {theirs / ours:6.3f}")
            print(
                f"  round {round_} {part:<6} {other.name:<{width}} {'   '.join(line)}", flush=True
            )


def _med(values: list[float]) -> float:
    return float(statistics.median(values))


def _figures(parent: Candidate, other: Candidate) -> dict[str, Any]:
    """The JSON row of ``other`` (or of ``parent`` itself): medians, ratios, the spread."""
    row: dict[str, Any] = {"name": other.name, **other.details}
    for size in BATCHES:
        row[f"latency_ms_per_sample_batch_{size}"] = _med(other.samples[size])
        row[f"latency_samples_ms_batch_{size}"] = other.samples[size]
    row["throughput_per_s_batch_32"] = 1000.0 / row["latency_ms_per_sample_batch_32"]
    row["size_bytes"] = other.path.stat().st_size
    row["parameter_count"] = other.parameters
    if other is parent:
        return row
    for size in BATCHES:
        row[f"latency_ratio_batch_{size}"] = _med(other.ratios[size])
        row[f"latency_ratio_range_batch_{size}"] = [
            min(other.ratios[size]),
            max(other.ratios[size]),
        ]
    row["throughput_ratio_batch_32"] = _med([1.0 / r for r in other.ratios[32]])
    row["size_ratio"] = row["size_bytes"] / parent.path.stat().st_size
    row["parameter_ratio"] = other.parameters / parent.parameters
    row["agreement"] = float((other.logits.argmax(1) == parent.logits.argmax(1)).mean())
    error = np.linalg.norm(other.logits - parent.logits) / np.linalg.norm(parent.logits)
    row["logits_relative_error"] = float(error)
    return row


def _verdict(row: dict[str, Any]) -> str:
    """Where the method does not pay off, plainly; else what it gains."""
    slower = [f"b{s}" for s in BATCHES if row[f"latency_ratio_batch_{s}"] > 1.0]
    notes = [f"SLOWER than float32 at {' and '.join(slower)}" if slower else "faster at b1+b32"]
    if row["size_ratio"] > 1.0:
        notes.append("LARGER file than float32")
    if row.get("accuracy_delta", 0.0) < -ACCURACY_NOTED:
        notes.append(f"LOSES {-row['accuracy_delta']:.3f} accuracy")
    return "; ".join(notes)


# --- the CNN ------------------------------------------------------------------------------


def _multiple(args: argparse.Namespace) -> dict[str, int]:
    return {} if args.multiple is None else {"multiple": args.multiple}


def _cnn(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    budget: Budget = args.budget
    rng = np.random.default_rng(1)
    shape = INPUT_SHAPES["cnn"]
    calibration = rng.standard_normal((CNN_ROWS, *shape), dtype=np.float32)
    quality = rng.standard_normal((CNN_ROWS, *shape), dtype=np.float32)
    sample = torch.from_numpy(quality[:2].copy())
    module = _build("cnn").eval()
    started = time.perf_counter()
    float_path = workdir / "cnn.onnx"
    export_onnx(module, sample, float_path)
    parent = _candidate("float32", float_path, parameter_count(module), args.threads, quality)
    print(f"cnn: float32 exported and loaded ({time.perf_counter() - started:.1f} s)", flush=True)
    others: list[Candidate] = []
    for method in INT8:
        for per_channel in (False, True) if budget.per_channel else (False,):
            name = f"int8-{method}" + ("-per-channel" if per_channel else "")
            target = workdir / f"cnn-{name}.onnx"
            started = time.perf_counter()
            result = quantize_model(
                float_path,
                target,
                method=method,
                per_channel=per_channel,
                calibration=calibration if method == "static" else None,
            )
            seconds = time.perf_counter() - started
            details = {"quantized_ops": result.quantized_ops, "optimise_s": seconds}
            others.append(
                _candidate(name, target, parent.parameters, args.threads, quality, **details)
            )
            print(f"cnn: {name} quantised and loaded ({seconds:.1f} s)", flush=True)
    started = time.perf_counter()
    pruned_module = _build("cnn").eval()
    pruning = prune_structured(pruned_module, PRUNE_AMOUNT, sample, **_multiple(args))
    pruned_path = workdir / "cnn-pruned.onnx"
    export_onnx(pruned_module, sample, pruned_path)
    seconds = time.perf_counter() - started
    others.append(
        _candidate(
            f"pruned-{PRUNE_AMOUNT:.0%}",
            pruned_path,
            pruning.parameters_after,
            args.threads,
            quality,
            structure=pruning.structure,
            optimise_s=seconds,
        )
    )
    print(f"cnn: pruned {PRUNE_AMOUNT:.0%} and exported ({seconds:.1f} s)", flush=True)
    distinct = len(np.unique(parent.logits.argmax(1)))
    _race("cnn", parent, others, quality, args)
    rows = [_figures(parent, other) for other in others]
    for row in rows:
        row["verdict"] = _verdict(row)
    return {
        "float32": _figures(parent, parent),
        "quality_rows": CNN_ROWS,
        "distinct_float32_classes": distinct,
        "models": rows,
    }


# --- digits -------------------------------------------------------------------------------


def _accuracy(candidate: Candidate, digits: Dataset) -> float:
    return float((candidate.logits.argmax(1) == digits.y_val).mean())


def _digits(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    budget: Budget = args.budget
    digits = load_digits()
    x_val = np.ascontiguousarray(digits.x_val)
    sample = torch.from_numpy(x_val[:8].copy())
    outputs = ("logits", "label")
    started = time.perf_counter()
    model = build_model("cnn", (64,), 10, seed=0)
    train(model, digits, TrainConfig(epochs=budget.teacher_epochs))
    head = ClassifierHead(model)
    float_path = workdir / "digits.onnx"
    export_onnx(head, sample, float_path, output_names=outputs)
    parent = _candidate("float32", float_path, parameter_count(head), args.threads, x_val)
    print(
        f"digits: float32 trained and exported ({time.perf_counter() - started:.1f} s)", flush=True
    )
    others: list[Candidate] = []
    for method in INT8:
        name = f"int8-{method}"
        target = workdir / f"digits-{name}.onnx"
        result = quantize_model(
            float_path,
            target,
            method=method,
            calibration=np.ascontiguousarray(digits.x_train) if method == "static" else None,
        )
        details: dict[str, Any] = {"quantized_ops": result.quantized_ops}
        others.append(_candidate(name, target, parent.parameters, args.threads, x_val, **details))
    started = time.perf_counter()
    pruned = copy.deepcopy(head)
    pruning = prune_structured(pruned, PRUNE_AMOUNT, sample, **_multiple(args))
    train(pruned.model, digits, TrainConfig(epochs=budget.finetune_epochs))
    pruned_path = workdir / "digits-pruned.onnx"
    export_onnx(pruned, sample, pruned_path, output_names=outputs)
    name = f"pruned-{PRUNE_AMOUNT:.0%}+{budget.finetune_epochs}ep"
    details = {"structure": pruning.structure}
    others.append(
        _candidate(name, pruned_path, pruning.parameters_after, args.threads, x_val, **details)
    )
    print(f"digits: pruned and fine-tuned ({time.perf_counter() - started:.1f} s)", flush=True)
    started = time.perf_counter()
    soft = teacher_logits(float_path, digits.x_train)
    config = TrainConfig(epochs=budget.student_epochs)
    student = build_model("cnn", (64,), 10, STUDENT, seed=0)
    objective = distillation_loss(soft, temperature=TEMPERATURE, alpha=ALPHA)
    train(student, digits, config, loss=objective)
    plain = build_model("cnn", (64,), 10, STUDENT, seed=0)
    plain_accuracy = train(plain, digits, config)[-1].val_accuracy
    student_path = workdir / "student.onnx"
    export_onnx(ClassifierHead(student), sample, student_path, output_names=outputs)
    name = f"distilled-{'x'.join(map(str, STUDENT['channels']))}"
    details = {
        "student": {"family": "cnn", **STUDENT},
        "epochs": budget.student_epochs,
        "temperature": TEMPERATURE,
        "alpha": ALPHA,
        "labels_only_accuracy": plain_accuracy,
    }
    others.append(
        _candidate(name, student_path, parameter_count(student), args.threads, x_val, **details)
    )
    print(f"digits: student distilled ({time.perf_counter() - started:.1f} s)", flush=True)
    _race("digits", parent, others, x_val, args)
    float_row = _figures(parent, parent) | {"accuracy": _accuracy(parent, digits)}
    rows = []
    for other in others:
        row = _figures(parent, other)
        row["accuracy"] = _accuracy(other, digits)
        row["accuracy_delta"] = row["accuracy"] - float_row["accuracy"]
        if "student" in other.details:
            row["accuracy_of_teacher"] = row["accuracy"] / float_row["accuracy"]
        row["verdict"] = _verdict(row)
        rows.append(row)
    return {"float32": float_row, "validation_rows": len(x_val), "models": rows}


# --- the report ---------------------------------------------------------------------------


def _ms(value: float) -> str:
    return f"{value:.4f}" if value < 1 else f"{value:.2f}"


def _cnn_quality(row: dict[str, Any]) -> str:
    if "agreement" not in row:
        return f"{'-':>5} {'-':>9}"
    return f"{row['agreement']:5.3f} {row['logits_relative_error']:9.4f}"


def _digits_quality(row: dict[str, Any]) -> str:
    if "agreement" not in row:
        return f"{row['accuracy']:5.3f} {'':>8} {'-':>5}"
    return f"{row['accuracy']:5.3f} ({row['accuracy_delta']:+.3f}) {row['agreement']:5.3f}"


def _table(
    title: str, part: dict[str, Any], quality: str, cells: Callable[[dict[str, Any]], str]
) -> None:
    """One line per model; ``cells(row)`` renders the ``quality`` columns."""
    print(f"\n{title}")
    head = (
        f"{'model':<24} {'ms/s b1':>8} {'ratio':>6} {'ms/s b32':>8} {'ratio':>6} "
        f"{'thru b32':>8} {'MiB':>6} {'size':>5} {'params':>6} {quality}  verdict"
    )
    print(head)
    print("-" * (len(head) + 24))
    f32 = part["float32"]
    print(
        f"{'float32':<24} {_ms(f32['latency_ms_per_sample_batch_1']):>8} {'':>6} "
        f"{_ms(f32['latency_ms_per_sample_batch_32']):>8} {'':>6} {'':>8} "
        f"{f32['size_bytes'] / 2**20:6.2f} {'':>5} {'':>6} {cells(f32)}  reference"
    )
    for row in part["models"]:
        print(
            f"{row['name']:<24} {_ms(row['latency_ms_per_sample_batch_1']):>8} "
            f"{row['latency_ratio_batch_1']:6.3f} {_ms(row['latency_ms_per_sample_batch_32']):>8} "
            f"{row['latency_ratio_batch_32']:6.3f} {row['throughput_ratio_batch_32']:8.3f} "
            f"{row['size_bytes'] / 2**20:6.2f} {row['size_ratio']:5.3f} "
            f"{row['parameter_ratio']:6.3f} {cells(row)}  {row['verdict']}"
        )


def _widths(part: dict[str, Any]) -> None:
    """Pruned widths: off multiples of 8, ORT's CPU convolutions can be slower than wider."""
    for row in part["models"]:
        if "structure" in row:
            kept = ", ".join(f"{k} {v}" for k, v in row["structure"].items())
            print(f"  {row['name']} keeps channels: {kept}")


def _summary(results: dict[str, Any]) -> None:
    if "cnn" in results:
        cnn = results["cnn"]
        _table("cnn (ResNet-18-sized, random weights)", cnn, "agree logit err", _cnn_quality)
        print(
            f"  agree: argmax as float32's on {cnn['quality_rows']} random-normal images, on "
            f"which float32 answers {cnn['distinct_float32_classes']} distinct class(es); "
            "logit err: |logits - float32's| / |float32's|"
        )
        _widths(cnn)
    if "digits" in results:
        digits = results["digits"]
        _table("digits CNN (trained here)", digits, "accuracy (delta) agree", _digits_quality)
        print(
            f"  accuracy and agree(ment with float32) on the {digits['validation_rows']} "
            "validation rows"
        )
        _widths(digits)
        for row in digits["models"]:
            if "accuracy_of_teacher" in row:
                print(
                    f"  {row['name']}: {row['accuracy_of_teacher']:.3f} of the teacher's accuracy "
                    f"with {row['parameter_ratio']:.3f} of its parameters; the same student "
                    f"trained on the labels alone: {row['labels_only_accuracy']:.3f}"
                )
    print(
        "\n  ratio, size, params: model / float32 (below 1: faster, smaller), latency the median"
        " over rounds of each alternated pair's ratio; thru b32: float32 ms / model ms at"
        " batch 32 (above 1: more rows/s)"
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        epilog=__doc__.split("\n\n", 1)[1],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--parts", nargs="+", choices=("cnn", "digits"), default=["cnn", "digits"])
    parser.add_argument("--rounds", type=int, default=5, help="alternations (>= 1; default 5)")
    parser.add_argument(
        "--threads",
        type=int,
        default=default_intra_op_threads(1),
        help="ONNX Runtime intra-op threads (default: as maas gives one instance, the cores)",
    )
    parser.add_argument(
        "--quick", action="store_true", help="1 round, short timings, few epochs, per tensor only"
    )
    parser.add_argument(
        "--multiple",
        type=int,
        default=None,
        help="pruning: kept widths in multiples of this (default: the job's default)",
    )
    parser.add_argument("--json", type=Path, help="also write the results to this file")
    args = parser.parse_args(argv)
    if args.rounds < 1:
        parser.error("--rounds must be >= 1")
    args.budget = QUICK if args.quick else FULL
    if args.quick:
        args.rounds = 1
    print(f"command: {command_line()}")
    print(
        f"threads: {args.threads}, rounds: {args.rounds}, torch threads: {torch.get_num_threads()}"
    )
    started = time.perf_counter()
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="maas-optimize-bench-") as tmp:
        if "cnn" in args.parts:
            results["cnn"] = _cnn(args, Path(tmp))
        if "digits" in args.parts:
            results["digits"] = _digits(args, Path(tmp))
    _summary(results)
    elapsed = time.perf_counter() - started
    print(f"\n  {elapsed:.0f} s in all")
    document = {
        "machine": machine(),
        "threads": args.threads,
        "rounds": args.rounds,
        "quick": args.quick,
        "seconds": elapsed,
        **results,
    }
    write_json(args.json, document)


if __name__ == "__main__":
    main()
