"""maas against the physical limit and against MLServer, side by side, on this machine.

For each model (a ResNet-18-sized CNN and a tiny MLP, both ONNX, batch-1 requests) it
measures, each run bounded by --duration-s:

  maas      REST-binary (wrk, V2 binary tensors), REST-JSON (wrk), gRPC (perf_analyzer)
  MLServer  REST-JSON (wrk), configurations "plain" (parallel_workers 0) and "batching"

at each concurrency, and prints throughput, p50, p99, the ratio to the in-process limit
(ONNX Runtime at batch 1 and at its best batch size) and the ratio to MLServer's best
configuration at the same concurrency; then the resident memory of a maas server with 10
MLP versions loaded against one, and the targets of issue 3, met or not.

Everything binds 127.0.0.1, lives in a throwaway folder, and every process started is
stopped by its PID. Load generator and servers share the same cores.

    .venv/bin/python benchmarks/serving.py --quick        # smoke test: MLP, c=1,8, 3 s
    .venv/bin/python benchmarks/serving.py                # everything, 10 s a run
    .venv/bin/python benchmarks/serving.py --models mlp --concurrency 32 --json out.json
    .venv/bin/python benchmarks/serving.py --models mlp --concurrency 32 --metrics off
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks import limit
from benchmarks.maas_server import (
    MaasServer,
    create_predict_key,
    memory_check,
    register,
    running_maas,
    tree_cpu_s,
)
from benchmarks.models import INPUT_SHAPES, MODELS, model_path
from benchmarks.peers.mlserver import server as mlserver
from benchmarks.tools import perf_analyzer, wrk
from maas.testing.processes import free_ports

TRANSPORTS = ("rest-binary", "rest-json", "grpc")


@dataclass
class Row:
    model: str
    server: str  # "maas" or "mlserver-<configuration>"
    transport: str
    concurrency: int
    throughput_per_s: float
    p50_ms: float
    p99_ms: float
    errors: int = 0
    #: Server CPU (user + system, its process tree) per item answered; maas rows only.
    cpu_us_per_item: float | None = None


def _bodies(folder: Path, model: str) -> dict[str, wrk.Body]:
    x = np.random.default_rng(0).standard_normal((1, *INPUT_SHAPES[model]), dtype=np.float32)
    return {
        "rest-json": wrk.write_body(folder / f"{model}.json", x, binary=False),
        "rest-binary": wrk.write_body(folder / f"{model}.bin", x, binary=True),
    }


def _wrk_row(
    model: str,
    server: str,
    transport: str,
    url: str,
    body: wrk.Body,
    c: int,
    duration_s: float,
    pid: int | None = None,
) -> Row:
    cpu_before = tree_cpu_s(pid) if pid is not None else 0.0
    r = wrk.run_wrk(url, body, c, duration_s)
    cpu_s = tree_cpu_s(pid) - cpu_before if pid is not None else None
    items = r.throughput_per_s * duration_s
    return Row(
        model,
        server,
        transport,
        c,
        r.throughput_per_s,
        r.p50_us / 1e3,
        r.p99_us / 1e3,
        r.non_2xx + r.errors,
        None if cpu_s is None or not items else cpu_s / items * 1e6,
    )


def _grpc_row(model: str, address: str, c: int, duration_s: float) -> Row:
    trials = 3
    window_ms = max(500, int(duration_s * 1000 / trials))
    (r,) = perf_analyzer.run_perf_analyzer(model, address, "grpc", c, window_ms, max_trials=trials)
    return Row(model, "maas", "grpc", c, r.throughput_per_s, r.p50_us / 1e3, r.p99_us / 1e3)
    # (perf_analyzer measures over several windows of its own choosing: no CPU per item)


def bench_maas(
    server: MaasServer, models: list[str], bodies: dict[str, dict[str, wrk.Body]], args: Args
) -> list[Row]:
    rows = []
    for model in models:
        url = f"{server.url}/v2/models/{model}/infer"
        for c in args.concurrency:
            for transport in args.transports:
                try:
                    if transport == "grpc":
                        rows.append(_grpc_row(model, server.grpc, c, args.duration_s))
                    else:
                        body = bodies[model][transport]
                        rows.append(
                            _wrk_row(
                                model, "maas", transport, url, body, c, args.duration_s, server.pid
                            )
                        )
                except (RuntimeError, perf_analyzer.PerfAnalyzerUnavailable) as exc:
                    print(f"  maas {model} {transport} c={c}: FAILED {exc}", file=sys.stderr)
                    continue
                _progress(rows[-1])
    return rows


def bench_mlserver(
    workdir: Path, models: list[str], bodies: dict[str, dict[str, wrk.Body]], args: Args
) -> list[Row]:
    rows = []
    paths = {m: model_path(m) for m in models}
    for configuration in mlserver.CONFIGURATIONS:
        first, second, third = free_ports(3)
        ports = (first, second, third)
        handle = mlserver.start(workdir / f"mlserver-{configuration}", paths, configuration, ports)
        try:
            for model in models:
                url = f"{handle.http_url}/v2/models/{model}/infer"
                for c in args.concurrency:
                    rows.append(
                        _wrk_row(
                            model,
                            f"mlserver-{configuration}",
                            "rest-json",
                            url,
                            bodies[model]["rest-json"],
                            c,
                            args.duration_s,
                        )
                    )
                    _progress(rows[-1])
        finally:
            mlserver.stop(handle)
    return rows


def _progress(row: Row) -> None:
    print(
        f"  {row.server:<17} {row.model:<4} {row.transport:<11} c={row.concurrency:<3} "
        f"{row.throughput_per_s:>9,.1f}/s  p50 {row.p50_ms:.2f} ms  p99 {row.p99_ms:.2f} ms"
        + (f"  ERRORS {row.errors}" if row.errors else ""),
        flush=True,
    )


def _ratio(a: float, b: float | None) -> str:
    return f"{a / b:.3g}" if b else "-"


def format_table(rows: list[Row], limits: dict[str, list[limit.LimitResult]]) -> str:
    peer_best: dict[tuple[str, int], Row] = {}
    for r in rows:
        key = (r.model, r.concurrency)
        if r.server.startswith("mlserver") and (
            key not in peer_best or r.throughput_per_s > peer_best[key].throughput_per_s
        ):
            peer_best[key] = r
    header = (
        f"{'model':<5} {'server':<17} {'transport':<11} {'conc':>4} {'items/s':>10} "
        f"{'p50 ms':>8} {'p99 ms':>8} {'x lim@1':>7} {'x lim@best':>10} {'x MLS best':>10}"
        f" {'cpu us/item':>11}"
    )
    lines = [header, "-" * len(header)]
    for r in rows:
        at1 = limits[r.model][0].items_per_s if r.model in limits else None
        best = max((x.items_per_s for x in limits.get(r.model, [])), default=None)
        peer = peer_best.get((r.model, r.concurrency))
        lines.append(
            f"{r.model:<5} {r.server:<17} {r.transport:<11} {r.concurrency:>4} "
            f"{r.throughput_per_s:>10,.1f} {r.p50_ms:>8.2f} {r.p99_ms:>8.2f} "
            f"{_ratio(r.throughput_per_s, at1):>7} {_ratio(r.throughput_per_s, best):>10} "
            f"{_ratio(r.throughput_per_s, peer.throughput_per_s if peer else None):>10}"
            + (f" {r.cpu_us_per_item:>11.1f}" if r.cpu_us_per_item is not None else f" {'-':>11}")
            + (f"  ({r.errors} errors)" if r.errors else "")
        )
    return "\n".join(lines)


def targets(
    rows: list[Row], limits: dict[str, list[limit.LimitResult]], memory: tuple[int, int] | None
) -> list[str]:
    """Issue 3's targets, each with its measured figure (only those this run measured)."""

    def find(model: str, server: str, transport: str, c: int) -> Row | None:
        return next(
            (
                r
                for r in rows
                if (r.model, r.server, r.transport, r.concurrency) == (model, server, transport, c)
            ),
            None,
        )

    out = []
    if "cnn" in limits:
        best = max(x.items_per_s for x in limits["cnn"])
        for transport in ("grpc", "rest-binary"):
            if r := find("cnn", "maas", transport, 32):
                share = r.throughput_per_s / best
                out.append(
                    f"CNN c=32 {transport}: {share:.0%} of the limit (target >= 90%): "
                    + ("met" if share >= 0.9 else "NOT met")
                )
    peers = [r for r in rows if r.model == "mlp" and r.server.startswith("mlserver")]
    for c, rule in ((32, "throughput"), (1, "p50")):
        ours = [r for r in rows if (r.model, r.server, r.concurrency) == ("mlp", "maas", c)]
        theirs = [r for r in peers if r.concurrency == c]
        if not ours or not theirs:
            continue
        if rule == "throughput":
            o = max(ours, key=lambda r: r.throughput_per_s)
            t = max(theirs, key=lambda r: r.throughput_per_s)
            x = o.throughput_per_s / t.throughput_per_s
            out.append(
                f"MLP c=32 throughput: {x:.2f}x MLServer best ({o.transport} vs "
                f"{t.server}; target >= 4x): " + ("met" if x >= 4 else "NOT met")
            )
            out.append(
                f"MLP c=32 p99: {o.p99_ms:.2f} ms vs MLServer {t.p99_ms:.2f} ms: "
                + ("met" if o.p99_ms <= t.p99_ms else "NOT met")
            )
        else:
            o = min(ours, key=lambda r: r.p50_ms)
            t = min(theirs, key=lambda r: r.p50_ms)
            out.append(
                f"MLP c=1 p50: {o.p50_ms:.2f} ms ({o.transport}) vs MLServer "
                f"{t.p50_ms:.2f} ms: " + ("met" if o.p50_ms < t.p50_ms else "NOT met")
            )
    if memory:
        one, ten = memory
        out.append(
            f"RSS 10 MLP versions / 1: {ten / 2**20:.0f} MiB / {one / 2**20:.0f} MiB = "
            f"{ten / one:.2f}x (target < 1.5x): " + ("met" if ten < 1.5 * one else "NOT met")
        )
    return out


class Args(argparse.Namespace):
    models: list[str]
    concurrency: list[int]
    transports: list[str]
    duration_s: float
    limit_duration_s: float
    workers: int
    metrics: str
    quick: bool
    skip_mlserver: bool
    skip_memory: bool
    server_pythonpath: str | None
    api_key: bool
    json: Path | None


def parse_args(argv: list[str] | None = None) -> Args:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        epilog=__doc__.split("\n\n", 1)[1],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--models", nargs="+", choices=MODELS, default=list(MODELS))
    parser.add_argument("--concurrency", nargs="+", type=int, default=[1, 8, 32])
    parser.add_argument("--transports", nargs="+", choices=TRANSPORTS, default=list(TRANSPORTS))
    parser.add_argument("--duration-s", type=float, default=10.0, help="seconds per run")
    parser.add_argument(
        "--limit-duration-s",
        type=float,
        default=2.0,
        help="seconds per batch size of the in-process limit",
    )
    parser.add_argument("--workers", type=int, default=1, help="MAAS_WORKERS of the server")
    parser.add_argument(
        "--metrics",
        choices=("on", "off"),
        default="on",
        help="MAAS_METRICS of the server: run once with each to see what /metrics costs",
    )
    parser.add_argument(
        "--quick", action="store_true", help="smoke test: MLP only, concurrency 1 and 8, 3 s runs"
    )
    parser.add_argument("--skip-mlserver", action="store_true", help="no peer runs")
    parser.add_argument("--skip-memory", action="store_true", help="no resident memory check")
    parser.add_argument(
        "--server-pythonpath",
        help="run maas (registration and `maas serve`) from this source folder, e.g. an "
        "older checkout's src, to compare two code versions in one session",
    )
    parser.add_argument(
        "--api-key",
        action="store_true",
        help="serve with keys required (a predict key made before the server starts) and "
        "send it with every REST request: what access checks cost (REST transports only)",
    )
    parser.add_argument("--json", type=Path, help="also write the results to this file")
    args = parser.parse_args(argv, namespace=Args())
    if args.api_key and "grpc" in args.transports:
        parser.error("--api-key measures the REST transports: leave out grpc")
    if args.quick:
        args.models, args.concurrency, args.duration_s = ["mlp"], [1, 8], 3.0
        args.limit_duration_s = min(args.limit_duration_s, 0.5)
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.server_pythonpath:  # the servers and registration started from here use it
        os.environ["PYTHONPATH"] = str(Path(args.server_pythonpath).resolve())
    os.environ["MAAS_METRICS"] = "true" if args.metrics == "on" else "false"  # every server
    print(f"in-process limit ({', '.join(args.models)}) ...", flush=True)
    limits = limit.limits(tuple(args.models), limit.BATCH_SIZES, args.limit_duration_s)
    print(limit.format_table(limits))
    rows: list[Row] = []
    memory = None
    with tempfile.TemporaryDirectory(prefix="maas-bench-") as tmp:
        workdir = Path(tmp)
        bodies = {m: _bodies(workdir, m) for m in args.models}
        home = workdir / "home"
        home.mkdir()
        register(home, {m: [model_path(m)] for m in args.models})
        if args.api_key:  # wrk's script sends it (v2_post.lua)
            os.environ["WRK_AUTHORIZATION"] = f"Bearer {create_predict_key(home)}"
        print(f"maas serve (workers={args.workers}, metrics {args.metrics}) ...", flush=True)
        with running_maas(home, args.workers) as server:
            rows += bench_maas(server, args.models, bodies, args)
        if not args.skip_mlserver:
            print("MLServer ...", flush=True)
            rows += bench_mlserver(workdir, args.models, bodies, args)
        if not args.skip_memory:
            print("resident memory: 1 vs 10 MLP versions ...", flush=True)
            versions = [model_path("mlp", seed=s) for s in range(10)]
            memory = memory_check(workdir, versions, args.workers)
    print()
    print(format_table(rows, limits))
    print()
    for line in targets(rows, limits, memory):
        print(line)
    if args.json:
        doc = {
            "metrics": args.metrics,
            "limits": {m: [asdict(r) for r in rs] for m, rs in limits.items()},
            "rows": [asdict(r) for r in rows],
            "memory_rss_bytes": {"one": memory[0], "ten": memory[1]} if memory else None,
        }
        args.json.write_text(json.dumps(doc, indent=2))


if __name__ == "__main__":
    main()
