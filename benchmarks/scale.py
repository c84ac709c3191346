"""What versions nobody calls cost a server: start time and resident memory with one
registered version of the benchmark MLP against --versions (1,000) of it.

Both registries are filled in-process before any server starts: the first version
through ``register_upload`` (validated by loading it), the others through
``Registry.register_version`` with the same file and signature (one artifact in the
store, deduplicated by digest; one row per version). Then, for --starts rounds,
alternating (1, N, 1, N, ...) after one untimed start, one ``maas serve`` per registry
measures:

  start   seconds from just before the process is started to the first 200 of
          ``/v2/health/ready`` (polled every 10 ms); the server loads and warms the
          default version (the newest: 1 or N) before it is ready;
  RSS     VmRSS of the server process and its children (``/proc``), once ready, and
          after one V2 REST-binary inference of the default route;
  loaded  the versions ``/api/deployments`` reports loaded (1 in both cases).

It prints each start, the medians, and the ratios N / 1 (target: neither start time nor
memory grows with versions nobody calls).

Everything binds 127.0.0.1, lives in a throwaway folder, and every process started is
stopped by its PID.

    .venv/bin/python benchmarks/scale.py --quick     # smoke test: 1,000 versions, 1 start each
    .venv/bin/python benchmarks/scale.py --json scale.json   # 1,000 versions, 3 starts each
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import httpx
import numpy as np

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.maas_server import infer, infer_request, timed_maas, tree_rss_bytes
from benchmarks.models import INPUT_SHAPES, model_path
from benchmarks.report import command_line, median, mib, ratio, verdict, write_json
from benchmarks.tools import wrk
from maas.config import Settings
from maas.control.uploads import register_upload
from maas.registry.service import Registry

MODEL = "mlp"
#: Growth within this share of the one-version figure counts as "does not grow" (noise
#: of starting a process on a shared machine).
TOLERANCE = 0.10


@dataclass
class Start:
    versions: int
    round: int
    start_s: float
    rss_ready_bytes: int
    rss_after_infer_bytes: int
    loaded_versions: int


def fill_registry(home: Path, count: int) -> float:
    """Register the MLP ``count`` times in ``home``; seconds it took. Prints progress."""
    path = model_path(MODEL)
    registry = Registry.from_settings(Settings(home=home))
    started = time.monotonic()
    try:
        first = register_upload(registry, MODEL, path, actor="benchmark")
        for number in range(2, count + 1):
            registry.register_version(
                MODEL,
                path,
                artifact_format=first.artifact_format,
                signature=first.signature,
                lineage={"source": "benchmark"},
                actor="benchmark",
            )
            if number % 50 == 0 or number == count:
                elapsed = time.monotonic() - started
                print(f"\r  registered {number:,}/{count:,} ({elapsed:.1f} s)", end="", flush=True)
    finally:
        registry.close()
    if count > 1:
        print()
    return time.monotonic() - started


def store_files(home: Path) -> tuple[int, int]:
    """Files in ``home``'s artifact store (the default layout) and their total size."""
    root = Settings(home=home).resolved_artifacts_dir / "sha256"
    files = [p for p in root.rglob("*") if p.is_file()]
    return len(files), sum(p.stat().st_size for p in files)


def measure_start(home: Path, versions: int, round_: int, body: wrk.Body) -> Start:
    request = infer_request(body)
    with (
        timed_maas(home) as (server, start_s),
        httpx.Client(base_url=server.url, timeout=120) as client,
    ):
        rss_ready = tree_rss_bytes(server.pid)
        infer(client, MODEL, request)
        rss_after = tree_rss_bytes(server.pid)
        rows = client.get("/api/deployments").raise_for_status().json()
        loaded = sum(1 for r in rows if r["state"] == "ready")
    start = Start(versions, round_, start_s, rss_ready, rss_after, loaded)
    print(
        f"  {versions:>6,} versions, round {round_}: ready in {start_s:.3f} s, "
        f"RSS {mib(rss_ready)} MiB ready, {mib(rss_after)} MiB after one inference, "
        f"{loaded} loaded",
        flush=True,
    )
    return start


def _medians(starts: list[Start], versions: int) -> dict[str, float]:
    chosen = [s for s in starts if s.versions == versions]
    return {
        "start_s": median(s.start_s for s in chosen),
        "rss_ready_bytes": median(s.rss_ready_bytes for s in chosen),
        "rss_after_infer_bytes": median(s.rss_after_infer_bytes for s in chosen),
    }


def report(starts: list[Start], many: int) -> tuple[list[str], dict[str, Any]]:
    header = (
        f"{'versions':>9}{'round':>7}{'start s':>9}{'RSS ready MiB':>15}"
        f"{'RSS +1 infer MiB':>18}{'loaded':>8}"
    )
    lines = [header, "-" * len(header)]
    for s in starts:
        lines.append(
            f"{s.versions:>9,}{s.round:>7}{s.start_s:>9.3f}{mib(s.rss_ready_bytes):>15}"
            f"{mib(s.rss_after_infer_bytes):>18}{s.loaded_versions:>8}"
        )
    one, n = _medians(starts, 1), _medians(starts, many)
    for label, m in (("1", one), (f"{many:,}", n)):
        lines.append(
            f"{label:>9}{'median':>7}{m['start_s']:>9.3f}{mib(m['rss_ready_bytes']):>15}"
            f"{mib(m['rss_after_infer_bytes']):>18}"
        )
    ratios = {k: n[k] / one[k] for k in one}
    lines.append(
        f"{many:,} / 1 (medians): start {ratio(n['start_s'], one['start_s'])}, "
        f"RSS ready {ratio(n['rss_ready_bytes'], one['rss_ready_bytes'])}, "
        f"RSS after one inference "
        f"{ratio(n['rss_after_infer_bytes'], one['rss_after_infer_bytes'])}"
    )
    limit = 1 + TOLERANCE
    lines.append(
        f"target: start time does not grow with unused versions (<= {limit:.2f}x): "
        f"{verdict(ratios['start_s'] <= limit)}; resident memory does not grow "
        f"(<= {limit:.2f}x): {verdict(ratios['rss_after_infer_bytes'] <= limit)}"
    )
    return lines, {"one": one, "many": n, "ratios": ratios}


class Args(argparse.Namespace):
    versions: int
    starts: int
    quick: bool
    json: Path | None


def parse_args(argv: list[str] | None = None) -> Args:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        epilog=__doc__.split("\n\n", 1)[1],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--versions", type=int, default=1000, help="versions of the big case")
    parser.add_argument("--starts", type=int, default=3, help="server starts per case")
    parser.add_argument(
        "--quick", action="store_true", help="smoke test: one start per case (still --versions)"
    )
    parser.add_argument("--json", type=Path, help="also write the results to this file")
    args = parser.parse_args(argv, namespace=Args())
    if args.quick:
        args.starts = 1
    if args.versions < 2:
        parser.error("--versions must be at least 2")
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    starts: list[Start] = []
    with tempfile.TemporaryDirectory(prefix="maas-bench-scale-") as tmp:
        folder = Path(tmp)
        x = np.random.default_rng(0).standard_normal((1, *INPUT_SHAPES[MODEL]), dtype=np.float32)
        body = wrk.write_body(folder / "body.bin", x, binary=True)
        homes = {1: folder / "home-1", args.versions: folder / f"home-{args.versions}"}
        fill_s: dict[int, float] = {}
        for count, home in homes.items():
            home.mkdir()
            print(f"registering {count:,} version(s) of {MODEL} ...", flush=True)
            fill_s[count] = fill_registry(home, count)
        files, size_bytes = store_files(homes[args.versions])
        # The first start after the registries were written also warms the page cache
        # (imports, the database): untimed.
        with timed_maas(homes[1]) as (_, prime_s):
            print(f"  (a first, untimed start: {prime_s:.3f} s)", flush=True)
        for round_ in range(1, args.starts + 1):
            for count, home in homes.items():
                starts.append(measure_start(home, count, round_, body))
    lines, summary = report(starts, args.versions)
    print()
    print(f"command: {command_line()}")
    print(
        f"registering {args.versions:,} versions took {fill_s[args.versions]:.1f} s; "
        f"their store holds {files} file(s), {mib(size_bytes)} MiB"
    )
    for line in lines:
        print(line)
    write_json(
        args.json,
        {
            "starts": [asdict(s) for s in starts],
            "summary": summary,
            "register_s": fill_s,
            "store": {"files": files, "size_bytes": size_bytes},
        },
    )


if __name__ == "__main__":
    main()
