"""Whether unloading gives memory back: a server's resident set over --cycles (20)
unload/load cycles of the ResNet-18-sized CNN.

One ``maas serve`` with the CNN registered; one V2 REST-binary inference, then the
start figure: VmRSS of the server process and its children (``/proc``). Each cycle:

  1. ``POST /api/models/cnn/unload`` (answers once the version has drained, closed and
     the server trimmed its heap), then RSS ("unloaded");
  2. ``POST /api/models/cnn/load`` (answers once the version is loaded and warm), one
     inference, then RSS ("loaded").

It prints one row per cycle, and the RSS at the start against the RSS after the last
cycle (target: within 10% of where it started).

Everything binds 127.0.0.1, lives in a throwaway folder, and every process started is
stopped by its PID.

    .venv/bin/python benchmarks/unload_memory.py --quick   # smoke test: 3 cycles
    .venv/bin/python benchmarks/unload_memory.py --json unload.json   # 20 cycles
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import httpx
import numpy as np

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.maas_server import infer, infer_request, register, running_maas, tree_rss_bytes
from benchmarks.models import INPUT_SHAPES, MODELS, model_path
from benchmarks.report import command_line, mib, verdict, write_json
from benchmarks.tools import wrk

TARGET = 1.10  # RSS after the last cycle over RSS at the start


@dataclass
class Cycle:
    cycle: int
    unload_s: float
    rss_unloaded_bytes: int
    load_s: float
    rss_loaded_bytes: int


def run_cycles(
    server_url: str, pid: int, model: str, body: wrk.Body, cycles: int
) -> tuple[int, list[Cycle]]:
    """The RSS at the start, and one row per cycle."""
    request = infer_request(body)
    rows = []
    with httpx.Client(base_url=server_url, timeout=600) as client:
        infer(client, model, request)
        start = tree_rss_bytes(pid)
        print(f"  start: {mib(start)} MiB with {model} loaded", flush=True)
        for number in range(1, cycles + 1):
            began = time.perf_counter()
            client.post(f"/api/models/{model}/unload").raise_for_status()
            unload_s = time.perf_counter() - began
            unloaded = tree_rss_bytes(pid)
            began = time.perf_counter()
            client.post(f"/api/models/{model}/load").raise_for_status()
            load_s = time.perf_counter() - began
            infer(client, model, request)
            loaded = tree_rss_bytes(pid)
            rows.append(Cycle(number, unload_s, unloaded, load_s, loaded))
            print(
                f"  cycle {number:>3}: unload {unload_s:.3f} s -> {mib(unloaded)} MiB, "
                f"load {load_s:.3f} s -> {mib(loaded)} MiB ({loaded / start:.3f}x start)",
                flush=True,
            )
    return start, rows


def report(model: str, start: int, rows: list[Cycle]) -> list[str]:
    header = (
        f"{'cycle':>6}{'unload s':>10}{'RSS unloaded MiB':>18}{'load s':>9}"
        f"{'RSS loaded MiB':>16}{'x start':>9}"
    )
    lines = [f"{model}: RSS at the start (loaded, one inference): {mib(start)} MiB", header]
    lines.append("-" * len(header))
    for r in rows:
        lines.append(
            f"{r.cycle:>6}{r.unload_s:>10.3f}{mib(r.rss_unloaded_bytes):>18}{r.load_s:>9.3f}"
            f"{mib(r.rss_loaded_bytes):>16}{r.rss_loaded_bytes / start:>9.3f}"
        )
    last = rows[-1].rss_loaded_bytes
    x = last / start
    lines += [
        f"start {mib(start)} MiB, after cycle {rows[-1].cycle} {mib(last)} MiB: {x:.3f}x; "
        f"highest {mib(max(r.rss_loaded_bytes for r in rows))} MiB loaded, "
        f"lowest {mib(min(r.rss_unloaded_bytes for r in rows))} MiB unloaded",
        f"target: within 10% of the start after {rows[-1].cycle} cycles (<= {TARGET:.2f}x): "
        + verdict(x <= TARGET),
    ]
    return lines


class Args(argparse.Namespace):
    model: str
    cycles: int
    quick: bool
    json: Path | None


def parse_args(argv: list[str] | None = None) -> Args:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        epilog=__doc__.split("\n\n", 1)[1],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--model", choices=MODELS, default="cnn")
    parser.add_argument("--cycles", type=int, default=20)
    parser.add_argument("--quick", action="store_true", help="smoke test: 3 cycles")
    parser.add_argument("--json", type=Path, help="also write the results to this file")
    args = parser.parse_args(argv, namespace=Args())
    if args.quick:
        args.cycles = 3
    if args.cycles < 1:
        parser.error("--cycles must be at least 1")
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="maas-bench-unload-") as tmp:
        folder = Path(tmp)
        shape = (1, *INPUT_SHAPES[args.model])
        x = np.random.default_rng(0).standard_normal(shape, dtype=np.float32)
        body = wrk.write_body(folder / "body.bin", x, binary=True)
        home = folder / "home"
        home.mkdir()
        register(home, {args.model: [model_path(args.model)]})
        print(f"maas serve, {args.cycles} unload/load cycles of {args.model} ...", flush=True)
        with running_maas(home) as server:
            start, rows = run_cycles(server.url, server.pid, args.model, body, args.cycles)
    print()
    print(f"command: {command_line()}")
    for line in report(args.model, start, rows):
        print(line)
    write_json(
        args.json,
        {
            "model": args.model,
            "rss_start_bytes": start,
            "cycles": [asdict(r) for r in rows],
            "ratio_last_to_start": rows[-1].rss_loaded_bytes / start,
        },
    )


if __name__ == "__main__":
    main()
