"""CPU per request of the REST inference hot path, in-process: the server's ASGI app driven
directly (no sockets, no load generator), 32 requests in flight, the benchmark MLP.

Throughput on a shared 2-core machine moves by 20-40% between runs (other machines'
work takes the cores); the CPU this process spends per answered request moves by a few
percent, so it is what compares two code versions, or a traffic policy with none:

  none     the default route, no traffic policy
  canary   a 90/10 split between two versions of the MLP
  shadow   every request also copied to another version and compared

Each configuration runs in a fresh child process; configurations (and, with --baseline,
code versions) alternate, round after round, and the medians are compared. The CPU of
the driving coroutines is included and the same in every configuration.

    .venv/bin/python benchmarks/hot_path.py --quick
    .venv/bin/python benchmarks/hot_path.py --rounds 5 --baseline /tmp/old-checkout/src
    .venv/bin/python benchmarks/hot_path.py --baseline src --baseline-env MAAS_METRICS=false
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from starlette.types import ASGIApp, Message

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.models import model_path

POLICIES: dict[str, dict[str, Any] | None] = {
    "none": None,
    "canary": {"split": [{"target": 1, "weight": 90}, {"target": 2, "weight": 10}]},
    "shadow": {"shadow": {"target": 2, "fraction": 1.0}},
}
CONCURRENCY = 32


def _request(binary: bool) -> tuple[bytes, list[tuple[bytes, bytes]]]:
    x = np.random.default_rng(0).standard_normal((1, 64), dtype=np.float32)
    if binary:
        header = json.dumps(
            {
                "inputs": [
                    {
                        "name": "input",
                        "datatype": "FP32",
                        "shape": [1, 64],
                        "parameters": {"binary_data_size": x.nbytes},
                    }
                ],
                "outputs": [{"name": "logits", "parameters": {"binary_data": True}}],
            }
        ).encode()
        body = header + x.tobytes()
        kind = b"application/octet-stream"
        extra = [(b"inference-header-content-length", str(len(header)).encode())]
    else:
        inputs = [
            {"name": "input", "datatype": "FP32", "shape": [1, 64], "data": x.ravel().tolist()}
        ]
        body = json.dumps({"inputs": inputs}).encode()
        kind, extra = b"application/json", []
    headers = [(b"content-type", kind), (b"content-length", str(len(body)).encode()), *extra]
    return body, headers


async def _call(
    app: ASGIApp, method: str, path: str, body: bytes, headers: list[tuple[bytes, bytes]]
) -> tuple[int, bytes]:
    """One request straight into the ASGI app; the client never disconnects."""
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": headers,
        "server": ("127.0.0.1", 80),
        "client": ("127.0.0.1", 1),
    }
    sent = False
    forever = asyncio.Event()
    status, chunks = 0, []

    async def receive() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        await forever.wait()
        return {"type": "http.disconnect"}

    async def send(message: Message) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]
        elif message["type"] == "http.response.body":
            chunks.append(message.get("body", b""))

    await app(scope, receive, send)
    return status, b"".join(chunks)


async def _child(
    policy: str, binary: bool, requests: int, passes: int, config: str | None = None
) -> float:
    from maas.config import Settings
    from maas.registry.service import Registry
    from maas.serving.app import build_app

    home = Path(tempfile.mkdtemp(prefix="maas-hot-path-"))
    maas = Path(sys.executable).parent / "maas"
    env = {**os.environ, "MAAS_HOME": str(home), "MAAS_PORT": "1"}
    if config:
        (home / "config.json").write_text(config)
    for path in (model_path("mlp"), model_path("mlp", seed=1)):  # as a user would register
        command = [str(maas), "models", "upload", str(path), "--name", "mlp"]
        if config:
            command += ["--config", str(home / "config.json")]
        subprocess.run(command, env=env, cwd=home, check=True, capture_output=True)
    settings = Settings(home=home, grpc_port=0, job_concurrency=0, refresh_interval_s=3600)
    registry = Registry.from_settings(settings)
    app = build_app(settings, registry)
    lifespan: asyncio.Queue[Message] = asyncio.Queue()
    started = asyncio.Event()

    async def life_send(message: Message) -> None:
        if message["type"].startswith("lifespan.startup"):
            started.set()

    async def run_lifespan() -> None:
        await app({"type": "lifespan"}, lifespan.get, life_send)

    await lifespan.put({"type": "lifespan.startup"})
    life = asyncio.create_task(run_lifespan())
    await started.wait()
    json_headers = [(b"content-type", b"application/json")]
    put = await _call(
        app, "PUT", "/api/models/mlp/aliases/production", b'{"version": 1}', json_headers
    )
    assert put[0] == 200, put
    if POLICIES[policy] is not None:
        body = json.dumps(POLICIES[policy]).encode()
        put = await _call(app, "PUT", "/api/models/mlp/traffic", body, json_headers)
        assert put[0] == 200, put
    body, headers = _request(binary)
    best: float | None = None
    for _ in range(passes):
        done = 0

        async def client() -> None:
            nonlocal done
            while done < requests:
                done += 1
                status, _ = await _call(app, "POST", "/v2/models/mlp/infer", body, headers)
                assert status == 200, status

        started_s = time.process_time()
        await asyncio.gather(*(client() for _ in range(CONCURRENCY)))
        per_us = (time.process_time() - started_s) / done * 1e6
        best = per_us if best is None else min(best, per_us)
    await lifespan.put({"type": "lifespan.shutdown"})
    await life
    registry.close()
    assert best is not None
    return best


def _measure(
    policy: str,
    binary: bool,
    args: argparse.Namespace,
    pythonpath: str | None,
    extra_env: dict[str, str] | None = None,
) -> float:
    env = dict(os.environ) | (extra_env or {})
    if pythonpath:
        env["PYTHONPATH"] = pythonpath
    command = [
        sys.executable, __file__, "--child", policy,
        "--requests", str(args.requests), "--passes", str(args.passes),
    ]  # fmt: skip
    if binary:
        command.append("--binary")
    if args.config:
        command += ["--config", args.config]
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"the measurement failed:\n{done.stdout}\n{done.stderr[-3000:]}")
    return float(done.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        epilog=__doc__.split("\n\n", 1)[1],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--policies", nargs="+", choices=POLICIES, default=list(POLICIES))
    parser.add_argument("--transports", nargs="+", choices=("binary", "json"), default=["binary"])
    parser.add_argument("--rounds", type=int, default=3, help="alternations of everything")
    parser.add_argument("--requests", type=int, default=10_000, help="requests per pass")
    parser.add_argument("--passes", type=int, default=3, help="passes per measurement (best)")
    parser.add_argument(
        "--baseline", help="also measure this source folder (an older checkout's src)"
    )
    parser.add_argument(
        "--baseline-env",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="an environment variable for the baseline only, e.g. MAAS_METRICS=false with "
        "--baseline pointing at this checkout's src: one code, two settings",
    )
    parser.add_argument("--quick", action="store_true", help="1 round of 2,000 requests")
    parser.add_argument(
        "--config", help='every version\'s serving config, as JSON: {"instances": {...}}'
    )
    parser.add_argument("--json", type=Path, help="also write the results to this file")
    parser.add_argument("--child", choices=POLICIES, help=argparse.SUPPRESS)
    parser.add_argument("--binary", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        result = _child(args.child, args.binary, args.requests, args.passes, args.config)
        print(asyncio.run(result))
        return
    if args.quick:
        args.rounds, args.requests, args.passes = 1, 2_000, 2
    print(f"command: {' '.join([Path(sys.executable).name, *sys.argv])}")
    codes: list[tuple[str, str | None]] = [("current", None)]
    if args.baseline:
        codes.append(("baseline", str(Path(args.baseline).resolve())))
    baseline_env = dict(item.split("=", 1) for item in args.baseline_env)
    samples: dict[tuple[str, str, str], list[float]] = {}
    for round_ in range(1, args.rounds + 1):
        for transport in args.transports:
            for policy in args.policies:
                for code, pythonpath in codes:
                    if code == "baseline" and policy != "none":
                        continue  # the baseline may have no traffic policies
                    extra = baseline_env if code == "baseline" else None
                    us = _measure(policy, transport == "binary", args, pythonpath, extra)
                    samples.setdefault((code, transport, policy), []).append(us)
                    row = f"{code:<8} {transport:<6} {policy:<6} {us:7.1f}"
                    print(f"  round {round_} {row} us/request", flush=True)
    print()
    head = f"{'code':<8} {'transport':<9} {'policy':<6} {'median us/req':>13}"
    print(f"{head} {'vs none':>8} {'vs baseline':>11}")
    medians = {key: statistics.median(values) for key, values in samples.items()}
    for (code, transport, policy), value in medians.items():
        none = medians.get((code, transport, "none"))
        base = medians.get(("baseline", transport, policy))
        vs_none = f"{value / none:.3f}" if none and policy != "none" else "-"
        vs_base = f"{value / base:.3f}" if base and code != "baseline" else "-"
        print(f"{code:<8} {transport:<9} {policy:<6} {value:13.1f} {vs_none:>8} {vs_base:>11}")
    if args.json:
        rows = [
            {
                "code": c,
                "transport": t,
                "policy": p,
                "samples_us": v,
                "median_us": medians[(c, t, p)],
            }
            for (c, t, p), v in samples.items()
        ]
        args.json.write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
