"""What a traffic policy costs the hot path: no policy against a canary split and against
a shadow, in one run against one ``maas serve``.

The benchmark MLP is registered three times: version 1 (seed 0, under ``production``),
version 2 (other weights, seed 1) and version 3 (version 1's bytes again, so that the
shadow's answers should agree with the primary's). wrk sends V2 REST-binary requests
(batch 1) to the default route, ``/v2/models/mlp/infer``:

  canary   c=32: no policy vs ``{"split": [production 90, version 2 10]}``;
           throughput and p50/p99, ratio canary / none (target: within 5%).
  shadow   c=8: no policy vs ``{"shadow": {"target": 3, "fraction": 1.0}}``;
           the callers' p50/p99, ratio shadow / none of p50 (target: under +5%),
           and the server's shadow report (mirrored, dropped, agreement) of each run.

The configurations alternate (none, policy, none, policy, ...) for --rounds rounds, so
drift on a busy machine shows in the per-run rows; the verdicts use the medians. After
each change of policy a --warmup-s wrk run settles the server before the timed run.

Everything binds 127.0.0.1, lives in a throwaway folder, and every process started is
stopped by its PID. Load generator and server share the same cores.

    .venv/bin/python benchmarks/traffic.py --quick       # smoke test: 2 rounds of 2 s
    .venv/bin/python benchmarks/traffic.py --json traffic.json   # 3 rounds of 10 s
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import httpx
import numpy as np

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.maas_server import MaasServer, register, running_maas, tree_cpu_s
from benchmarks.models import INPUT_SHAPES, model_path
from benchmarks.report import command_line, median, ratio, verdict, write_json
from benchmarks.tools import wrk

MODEL = "mlp"
CANARY: dict[str, Any] = {
    "split": [{"target": "production", "weight": 90}, {"target": 2, "weight": 10}]
}
SHADOW: dict[str, Any] = {"shadow": {"target": 3, "fraction": 1.0}}
#: Counters of the shadow report that one run's figures are the difference of.
SHADOW_COUNTS = ("offered", "mirrored", "dropped", "errors", "compared", "agreed")


@dataclass
class Run:
    section: str  # "canary" or "shadow"
    round: int
    policy: str  # "none", "canary" or "shadow"
    concurrency: int
    throughput_per_s: float
    p50_ms: float
    p99_ms: float
    errors: int
    #: the server's CPU (user + system, its process tree) per request answered: moves far
    #: less than throughput when other machines take this one's cores
    cpu_us_per_request: float = 0.0
    #: canary: requests per version during the timed run
    split_requests: dict[str, int] = field(default_factory=dict)
    #: shadow: the report's counters during the timed run, and its latencies after it
    shadow: dict[str, Any] = field(default_factory=dict)


def _set_policy(client: httpx.Client, policy: dict[str, Any] | None) -> None:
    """Apply ``policy`` (None: none), then check that the server applies it."""
    if policy is None:
        client.delete(f"/api/models/{MODEL}/traffic").raise_for_status()
    else:
        client.put(f"/api/models/{MODEL}/traffic", json=policy).raise_for_status()
    serving = _serving(client)
    applied = serving.get("policy")
    if (policy is None) != (applied is None) or serving.get("held"):
        raise RuntimeError(f"the server does not apply the policy {policy}: {serving}")


def _serving(client: httpx.Client) -> dict[str, Any]:
    serving: dict[str, Any] = client.get(f"/api/models/{MODEL}/traffic").json()["serving"]
    return serving


def _split_counts(serving: dict[str, Any]) -> dict[str, int]:
    return {str(s["version"]): int(s["requests"]) for s in serving.get("split") or []}


def _settled_shadow(client: httpx.Client, timeout_s: float = 30) -> dict[str, Any]:
    """The shadow report once every copy due has been sent (or dropped, or failed)."""
    deadline = time.monotonic() + timeout_s
    while True:
        report: dict[str, Any] = _serving(client)["shadow"]
        done = report["mirrored"] + report["dropped"] + report["errors"]
        if done >= report["offered"] * report["fraction"] - 1 or time.monotonic() > deadline:
            return report
        time.sleep(0.1)


def _timed_run(
    server: MaasServer,
    client: httpx.Client,
    body: wrk.Body,
    section: str,
    round_: int,
    name: str,
    policy: dict[str, Any] | None,
    concurrency: int,
    args: Args,
) -> Run:
    url = f"{server.url}/v2/models/{MODEL}/infer"
    _set_policy(client, policy)
    wrk.run_wrk(url, body, concurrency, args.warmup_s)
    before = _serving(client)
    shadow_before = _settled_shadow(client) if before["shadow"] else None
    cpu_before_s = tree_cpu_s(server.pid)
    result = wrk.run_wrk(url, body, concurrency, args.duration_s)
    if shadow_before is not None:
        _settled_shadow(client)  # the copies of this run are the run's cost too
    cpu_s = tree_cpu_s(server.pid) - cpu_before_s
    after = _serving(client)
    run = Run(
        section,
        round_,
        name,
        concurrency,
        result.throughput_per_s,
        result.p50_us / 1000,
        result.p99_us / 1000,
        result.non_2xx + result.errors,
        cpu_s / max(result.throughput_per_s * args.duration_s, 1) * 1e6,
    )
    counts_before = _split_counts(before)
    run.split_requests = {v: n - counts_before.get(v, 0) for v, n in _split_counts(after).items()}
    if shadow_before is not None:
        report = _settled_shadow(client)
        run.shadow = {k: report[k] - shadow_before[k] for k in SHADOW_COUNTS}
        run.shadow["agreement"] = (
            run.shadow["agreed"] / run.shadow["compared"] if run.shadow["compared"] else None
        )
        run.shadow |= {
            "primary_latency": report["primary_latency"],
            "shadow_latency": report["shadow_latency"],
            "max_abs_diff": report["max_abs_diff"],
            "last_error": report["last_error"],
        }
    _progress(run)
    return run


def _progress(run: Run) -> None:
    extra = ""
    if run.split_requests:
        extra = "  split " + ", ".join(f"v{v}: {n:,}" for v, n in run.split_requests.items())
    if run.shadow:
        extra = f"  mirrored {run.shadow['mirrored']:,}  dropped {run.shadow['dropped']:,}"
    print(
        f"  round {run.round} {run.policy:<6} c={run.concurrency:<3} "
        f"{run.throughput_per_s:>9,.1f}/s  p50 {run.p50_ms:.2f} ms  p99 {run.p99_ms:.2f} ms"
        f"  cpu {run.cpu_us_per_request:.1f} us/req"
        + (f"  ERRORS {run.errors}" if run.errors else "")
        + extra,
        flush=True,
    )


def _section_table(runs: list[Run], policy: str) -> list[str]:
    header = (
        f"{'round':<7}{'policy':<8}{'req/s':>10}{'p50 ms':>9}{'p99 ms':>9}{'cpu us':>8}"
        f"{'errors':>8}  detail"
    )
    lines = [header, "-" * len(header)]
    for r in runs:
        detail = ""
        if r.split_requests:
            total = sum(r.split_requests.values()) or 1
            detail = ", ".join(f"v{v} {n:,} ({n / total:.1%})" for v, n in r.split_requests.items())
        if r.shadow:
            agreement = r.shadow["agreement"]
            detail = (
                f"mirrored {r.shadow['mirrored']:,}, dropped {r.shadow['dropped']:,}, "
                f"errors {r.shadow['errors']:,}, agreement "
                + ("-" if agreement is None else f"{agreement:.1%}")
            )
        lines.append(
            f"{r.round:<7}{r.policy:<8}{r.throughput_per_s:>10,.0f}{r.p50_ms:>9.2f}"
            f"{r.p99_ms:>9.2f}{r.cpu_us_per_request:>8.1f}{r.errors:>8}  {detail}"
        )
    for name in ("none", policy):
        chosen = [r for r in runs if r.policy == name]
        lines.append(
            f"{'median':<7}{name:<8}{median(r.throughput_per_s for r in chosen):>10,.0f}"
            f"{median(r.p50_ms for r in chosen):>9.2f}{median(r.p99_ms for r in chosen):>9.2f}"
            f"{median(r.cpu_us_per_request for r in chosen):>8.1f}"
            f"{sum(r.errors for r in chosen):>8}"
        )
    return lines


def _medians(runs: list[Run], policy: str) -> dict[str, float]:
    chosen = [r for r in runs if r.policy == policy]
    return {
        "throughput_per_s": median(r.throughput_per_s for r in chosen),
        "p50_ms": median(r.p50_ms for r in chosen),
        "p99_ms": median(r.p99_ms for r in chosen),
        "cpu_us_per_request": median(r.cpu_us_per_request for r in chosen),
    }


def report(runs: list[Run], args: Args) -> tuple[list[str], dict[str, Any]]:
    """The tables, the ratios and the verdicts; and the same as a JSON document."""
    lines: list[str] = []
    summary: dict[str, Any] = {}
    canary = [r for r in runs if r.section == "canary"]
    if canary:
        none, split = _medians(canary, "none"), _medians(canary, "canary")
        x = split["throughput_per_s"] / none["throughput_per_s"]
        lines += [
            f"MLP, REST-binary, c={args.canary_concurrency}, {args.duration_s:g} s a run: "
            "no policy vs canary (90% production = v1, 10% v2)",
            *_section_table(canary, "canary"),
            f"canary / none (medians): throughput {x:.3f}, "
            f"p50 {ratio(split['p50_ms'], none['p50_ms'])}, "
            f"p99 {ratio(split['p99_ms'], none['p99_ms'])}, "
            "server CPU per request "
            f"{ratio(split['cpu_us_per_request'], none['cpu_us_per_request'])}",
            f"target: canary throughput within 5% of no policy (>= 0.95): {verdict(x >= 0.95)}",
            "",
        ]
        summary["canary"] = {"none": none, "canary": split, "throughput_ratio": x}
    shadow = [r for r in runs if r.section == "shadow"]
    if shadow:
        none, mirrored = _medians(shadow, "none"), _medians(shadow, "shadow")
        x = mirrored["p50_ms"] / none["p50_ms"]
        last = shadow[-1].shadow if shadow[-1].shadow else {}
        lines += [
            f"MLP, REST-binary, c={args.shadow_concurrency}, {args.duration_s:g} s a run: "
            "no policy vs shadow (every request copied to v3, v1's bytes)",
            *_section_table(shadow, "shadow"),
            f"shadow / none (medians): p50 {x:.3f}, "
            f"p99 {ratio(mirrored['p99_ms'], none['p99_ms'])}, "
            f"throughput {ratio(mirrored['throughput_per_s'], none['throughput_per_s'])}, "
            f"server CPU per request "
            f"{ratio(mirrored['cpu_us_per_request'], none['cpu_us_per_request'])}",
            f"target: shadow adds under 5% to the caller's p50 (< 1.05): {verdict(x < 1.05)}",
        ]
        if last:
            lines.append(
                "shadow report after the last shadow run (GET /api/models/mlp/traffic): "
                f"offered {last['offered']:,}, mirrored {last['mirrored']:,}, "
                f"dropped {last['dropped']:,}, errors {last['errors']:,}, agreement "
                + ("-" if last["agreement"] is None else f"{last['agreement']:.2%}")
                + f", primary p50 {_ms(last['primary_latency'])}"
                f", shadow call p50 {_ms(last['shadow_latency'])}"
                + (f", last error: {last['last_error']}" if last["last_error"] else "")
            )
        summary["shadow"] = {"none": none, "shadow": mirrored, "p50_ratio": x, "last": last}
    return lines, summary


def _ms(latency: dict[str, float | None]) -> str:
    p50 = latency.get("p50_ms")
    return "-" if p50 is None else f"{p50:.3f} ms"


class Args(argparse.Namespace):
    duration_s: float
    warmup_s: float
    rounds: int
    canary_concurrency: int
    shadow_concurrency: int
    sections: list[str]
    quick: bool
    json: Path | None


def parse_args(argv: list[str] | None = None) -> Args:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        epilog=__doc__.split("\n\n", 1)[1],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--duration-s", type=float, default=10.0, help="seconds per timed run")
    parser.add_argument(
        "--warmup-s", type=float, default=2.0, help="untimed wrk run after each policy change"
    )
    parser.add_argument(
        "--rounds", type=int, default=3, help="times each configuration runs (alternating)"
    )
    parser.add_argument("--canary-concurrency", type=int, default=32)
    parser.add_argument("--shadow-concurrency", type=int, default=8)
    parser.add_argument(
        "--sections", nargs="+", choices=("canary", "shadow"), default=["canary", "shadow"]
    )
    parser.add_argument("--quick", action="store_true", help="smoke test: 2 rounds of 2 s runs")
    parser.add_argument("--json", type=Path, help="also write the results to this file")
    args = parser.parse_args(argv, namespace=Args())
    if args.quick:
        args.duration_s, args.warmup_s, args.rounds = 2.0, 1.0, 2
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    runs: list[Run] = []
    with tempfile.TemporaryDirectory(prefix="maas-bench-traffic-") as tmp:
        folder = Path(tmp)
        x = np.random.default_rng(0).standard_normal((1, *INPUT_SHAPES[MODEL]), dtype=np.float32)
        body = wrk.write_body(folder / "body.bin", x, binary=True)
        home = folder / "home"
        home.mkdir()
        first, other = model_path(MODEL), model_path(MODEL, seed=1)
        register(home, {MODEL: [first, other, first]})
        print("maas serve ...", flush=True)
        with running_maas(home) as server, httpx.Client(base_url=server.url, timeout=120) as c:
            c.put(f"/api/models/{MODEL}/aliases/production", json={"version": 1}).raise_for_status()
            for section in args.sections:
                policy = CANARY if section == "canary" else SHADOW
                conc = args.canary_concurrency if section == "canary" else args.shadow_concurrency
                print(f"{section}: alternating none / {section}, c={conc} ...", flush=True)
                for round_ in range(1, args.rounds + 1):
                    for name, document in (("none", None), (section, policy)):
                        runs.append(
                            _timed_run(server, c, body, section, round_, name, document, conc, args)
                        )
            _set_policy(c, None)
    lines, summary = report(runs, args)
    print()
    print(f"command: {command_line()}")
    for line in lines:
        print(line)
    write_json(args.json, {"runs": [asdict(r) for r in runs], "summary": summary})


if __name__ == "__main__":
    main()
