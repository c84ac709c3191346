"""Cold starts: how long until a version that is not in memory answers its first request.

Two cases, for the benchmark MLP and the ResNet-18-sized CNN (batch-1 V2 REST-binary
requests, one client, nothing else running against the server):

  upload   ``POST /api/models/{name}/versions`` with the ONNX file (read into memory
           first), then ``POST /v2/models/{name}/infer``: the time to the upload's
           answer (the server validates, stores, and loads and warms the version,
           the model's first, before it answers), the time of that first inference,
           and their sum. Each repetition uploads a new model (``mlp-cold-1``, ...);
           it is unloaded afterwards (untimed) so that the next starts from the same
           state. One untimed upload (model ``prime``) goes first: the server's first
           upload also pays one-time costs (imports, first writes).
  evicted  A server with ``MAAS_MAX_LOADED_VERSIONS`` = --max-loaded-versions (2) and
           versions 1, 2, 3 of the model, ``production`` on version 1 (pinned: it
           counts towards the bound but is never evicted, so the bound must be at
           least 2). A request to version 2 loads it; each repetition then requests
           version 3 by number (it loads, and the bound evicts version 2, the least
           recently used one no route pins; checked in ``/api/deployments``), waits
           --settle-s for the eviction to finish, and times the next request to
           version 2: evicted -> first prediction (it loads on that request, and
           evicts 3).

A warm request to the same version follows each timed one, for reference. Each case
prints every repetition, then the median and the maximum.

Everything binds 127.0.0.1, lives in a throwaway folder, and every process started is
stopped by its PID.

    .venv/bin/python benchmarks/cold_start.py --quick    # smoke test: 2 repetitions
    .venv/bin/python benchmarks/cold_start.py --json cold.json   # 5 repetitions
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import httpx
import numpy as np

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.maas_server import (
    InferRequest,
    environment,
    infer,
    infer_request,
    register,
    running_maas,
)
from benchmarks.models import INPUT_SHAPES, MODELS, model_path
from benchmarks.report import command_line, median, write_json
from benchmarks.tools import wrk


@dataclass
class Sample:
    case: str  # "upload" or "evicted"
    model: str
    repetition: int
    upload_s: float | None  # upload: until the upload's answer; evicted: None
    first_infer_s: float
    warm_infer_s: float

    @property
    def total_s(self) -> float:
        return (self.upload_s or 0.0) + self.first_infer_s


def _request(folder: Path, model: str) -> InferRequest:
    x = np.random.default_rng(0).standard_normal((1, *INPUT_SHAPES[model]), dtype=np.float32)
    return infer_request(wrk.write_body(folder / f"{model}.bin", x, binary=True))


def _timed(call: Callable[..., object], *args: Any, **kwargs: Any) -> float:
    started = time.perf_counter()
    call(*args, **kwargs)
    return time.perf_counter() - started


def upload_case(folder: Path, models: list[str], repetitions: int) -> list[Sample]:
    """Upload -> first prediction, on one server that starts with an empty registry."""
    samples = []
    home = folder / "home-upload"
    home.mkdir()
    octets = {"Content-Type": "application/octet-stream"}
    with running_maas(home) as server, httpx.Client(base_url=server.url, timeout=600) as client:
        # The server's first upload also pays one-time costs (imports, first writes): untimed.
        mlp = model_path("mlp").read_bytes()
        prime = _timed(
            lambda: client.post(
                "/api/models/prime/versions", content=mlp, headers=octets
            ).raise_for_status()
        )
        client.post("/api/models/prime/unload").raise_for_status()
        print(f"  (the server's first upload, an MLP, untimed: {prime * 1000:,.1f} ms)")
        for model in models:
            artifact = model_path(model).read_bytes()
            request = _request(folder, model)
            for repetition in range(1, repetitions + 1):
                name = f"{model}-cold-{repetition}"
                started = time.perf_counter()
                client.post(
                    f"/api/models/{name}/versions", content=artifact, headers=octets
                ).raise_for_status()
                uploaded = time.perf_counter()
                infer(client, name, request)
                first = time.perf_counter()
                warm = _timed(infer, client, name, request)
                samples.append(
                    Sample("upload", model, repetition, uploaded - started, first - uploaded, warm)
                )
                _progress(samples[-1])
                client.post(f"/api/models/{name}/unload").raise_for_status()
    return samples


def _states(client: httpx.Client, model: str) -> dict[int, str]:
    rows = client.get("/api/deployments", params={"model": model}).raise_for_status().json()
    return {int(r["version"]): r["state"] for r in rows if r["version"] is not None}


def _expect(client: httpx.Client, model: str, ready: int, evicted: int) -> None:
    states = _states(client, model)
    if states.get(ready) != "ready" or states.get(evicted) == "ready":
        raise RuntimeError(
            f"expected version {ready} loaded and {evicted} evicted, the server holds {states}"
        )


def evicted_case(
    folder: Path, model: str, repetitions: int, max_loaded: int, settle_s: float
) -> list[Sample]:
    """Evicted -> first prediction (see the module docstring)."""
    samples = []
    home = folder / f"home-evict-{model}"
    home.mkdir()
    path = model_path(model)
    register(home, {model: [path, path, path]})  # one artifact in the store, three versions
    request = _request(folder, model)
    with (
        environment(MAAS_MAX_LOADED_VERSIONS=str(max_loaded)),
        running_maas(home) as server,
        httpx.Client(base_url=server.url, timeout=600) as client,
    ):
        alias = {"version": 1}
        client.put(f"/api/models/{model}/aliases/production", json=alias).raise_for_status()
        infer(client, model, request, version=2)  # loaded: 1 (pinned), 2
        for repetition in range(1, repetitions + 1):
            infer(client, model, request, version=3)  # loads 3, the bound evicts 2
            _expect(client, model, ready=3, evicted=2)
            time.sleep(settle_s)
            first = _timed(infer, client, model, request, version=2)  # loads 2, evicts 3
            warm = _timed(infer, client, model, request, version=2)
            _expect(client, model, ready=2, evicted=3)
            samples.append(Sample("evicted", model, repetition, None, first, warm))
            _progress(samples[-1])
    said = (home / "server.log").read_text(errors="replace")
    evictions = said.count(f"unloading {model} version 2: the server is over its memory bound")
    if evictions < repetitions:
        raise RuntimeError(
            f"the server log names {evictions} evictions of version 2 by the bound, "
            f"not {repetitions}: see {home / 'server.log'}"
        )
    return samples


def _progress(s: Sample) -> None:
    upload = "" if s.upload_s is None else f"upload {s.upload_s * 1000:,.1f} ms  "
    print(
        f"  {s.case:<7} {s.model:<4} #{s.repetition}: {upload}"
        f"first inference {s.first_infer_s * 1000:,.1f} ms  total {s.total_s * 1000:,.1f} ms"
        f"  (warm {s.warm_infer_s * 1000:,.2f} ms)",
        flush=True,
    )


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value * 1000:,.1f}"


def format_table(samples: list[Sample]) -> list[str]:
    header = (
        f"{'case':<9}{'model':<6}{'rep':>6}{'upload ms':>12}{'1st infer ms':>14}"
        f"{'total ms':>11}{'warm ms':>9}"
    )
    lines = [header, "-" * len(header)]
    groups: dict[tuple[str, str], list[Sample]] = {}
    for s in samples:
        groups.setdefault((s.case, s.model), []).append(s)
    for (case, model), group in groups.items():
        for s in group:
            lines.append(
                f"{case:<9}{model:<6}{s.repetition:>6}{_ms(s.upload_s):>12}"
                f"{_ms(s.first_infer_s):>14}{_ms(s.total_s):>11}{s.warm_infer_s * 1000:>9.2f}"
            )
        for label, pick in (("median", median), ("max", max)):
            uploads = [s.upload_s for s in group if s.upload_s is not None]
            lines.append(
                f"{case:<9}{model:<6}{label:>6}"
                f"{_ms(pick(uploads) if uploads else None):>12}"
                f"{_ms(pick(s.first_infer_s for s in group)):>14}"
                f"{_ms(pick(s.total_s for s in group)):>11}"
                f"{pick(s.warm_infer_s for s in group) * 1000:>9.2f}"
            )
    return lines


def summary(samples: list[Sample]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for s in samples:
        out.setdefault(s.case, {}).setdefault(s.model, []).append(s)
    return {
        case: {
            model: {
                "median_total_s": median(s.total_s for s in group),
                "max_total_s": max(s.total_s for s in group),
                "median_first_infer_s": median(s.first_infer_s for s in group),
            }
            for model, group in by_model.items()
        }
        for case, by_model in out.items()
    }


class Args(argparse.Namespace):
    models: list[str]
    cases: list[str]
    repetitions: int
    max_loaded_versions: int
    settle_s: float
    quick: bool
    json: Path | None


def parse_args(argv: list[str] | None = None) -> Args:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        epilog=__doc__.split("\n\n", 1)[1],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--models", nargs="+", choices=MODELS, default=["mlp", "cnn"])
    parser.add_argument(
        "--cases", nargs="+", choices=("upload", "evicted"), default=["upload", "evicted"]
    )
    parser.add_argument("--repetitions", type=int, default=5, help="per case and model")
    parser.add_argument(
        "--max-loaded-versions",
        type=int,
        default=2,
        help="MAAS_MAX_LOADED_VERSIONS of the eviction server (>= 2: production is pinned)",
    )
    parser.add_argument(
        "--settle-s", type=float, default=1.0, help="pause after an eviction before timing"
    )
    parser.add_argument("--quick", action="store_true", help="smoke test: 2 repetitions")
    parser.add_argument("--json", type=Path, help="also write the results to this file")
    args = parser.parse_args(argv, namespace=Args())
    if args.max_loaded_versions < 2:
        parser.error(
            "--max-loaded-versions must be at least 2: the pinned production version counts "
            "towards the bound, so with a bound of 1 any other version is evicted right after "
            "its own load"
        )
    if args.quick:
        args.repetitions, args.settle_s = 2, 0.5
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    samples: list[Sample] = []
    with tempfile.TemporaryDirectory(prefix="maas-bench-cold-") as tmp:
        folder = Path(tmp)
        if "upload" in args.cases:
            print("upload -> first prediction ...", flush=True)
            samples += upload_case(folder, args.models, args.repetitions)
        if "evicted" in args.cases:
            for model in args.models:
                print(
                    f"evicted -> first prediction, {model}, "
                    f"MAAS_MAX_LOADED_VERSIONS={args.max_loaded_versions} ...",
                    flush=True,
                )
                samples += evicted_case(
                    folder, model, args.repetitions, args.max_loaded_versions, args.settle_s
                )
    print()
    print(f"command: {command_line()}")
    for line in format_table(samples):
        print(line)
    print(
        "upload: until the upload's answer (validated, stored, loaded, warmed); "
        "1st infer: the first request after it; evicted: the request that loads the "
        "evicted version again; warm: the request after that."
    )
    rows = [asdict(s) | {"total_s": s.total_s} for s in samples]
    write_json(args.json, {"samples": rows, "summary": summary(samples)})


if __name__ == "__main__":
    main()
