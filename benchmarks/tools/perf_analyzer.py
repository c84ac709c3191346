"""Triton's perf_analyzer, installed into its own venv under ``benchmarks/.cache/``.

The PyPI package ``perf-analyzer`` is an empty placeholder and recent ``tritonclient``
wheels ship no binary (or one that needs a newer glibc than Debian 12's). The binary in
``tritonclient[all]==2.50.0`` runs here once Debian's ``libb64-0d`` is installed
(``apt-get install libb64-0d``) and PyPI's ``nvidia-cuda-runtime-cu12`` is on
``LD_LIBRARY_PATH``: it loads libcudart even when it only speaks to a CPU server.

>>> binary = ensure_perf_analyzer()                          # doctest: +SKIP
>>> run_perf_analyzer("mlp", "127.0.0.1:8080", "http", 8)    # doctest: +SKIP
PerfResult(concurrency=8, throughput_per_s=..., p50_us=..., p99_us=...)
"""

from __future__ import annotations

import csv
import os
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "PerfAnalyzerUnavailable",
    "PerfResult",
    "ensure_perf_analyzer",
    "perf_analyzer_env",
    "run_perf_analyzer",
]

CACHE_DIR = Path(__file__).resolve().parents[1] / ".cache"
VENV_DIR = CACHE_DIR / "venv-perf-analyzer"
PACKAGES = ("tritonclient[all]==2.50.0", "nvidia-cuda-runtime-cu12")


class PerfAnalyzerUnavailable(RuntimeError):
    """perf_analyzer cannot be installed or started here; ``reason`` says why."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class PerfResult:
    """One concurrency level of one perf_analyzer run (latencies in microseconds)."""

    concurrency: int
    throughput_per_s: float
    p50_us: float
    p99_us: float


def _site_packages(venv: Path) -> Path:
    found = sorted((venv / "lib").glob("python3*/site-packages"))
    if not found:
        raise PerfAnalyzerUnavailable(f"no site-packages under {venv}")
    return found[0]


def _find_binary(venv: Path) -> Path | None:
    candidates = [venv / "bin" / "perf_analyzer"]
    if (venv / "lib").exists():
        candidates += sorted(_site_packages(venv).glob("tritonclient/**/perf_analyzer"))
    for path in candidates:
        if path.is_file() and os.access(path, os.X_OK):
            return path
    return None


def _cuda_lib_dirs(venv: Path) -> list[Path]:
    return sorted(p.parent for p in _site_packages(venv).glob("nvidia/*/lib/libcudart.so*"))


def perf_analyzer_env(venv: Path = VENV_DIR) -> dict[str, str]:
    """The environment to run the binary in: the venv's CUDA runtime on LD_LIBRARY_PATH."""
    dirs = [str(d) for d in _cuda_lib_dirs(venv)]
    old = os.environ.get("LD_LIBRARY_PATH")
    return {**os.environ, "LD_LIBRARY_PATH": os.pathsep.join([*dirs, *([old] if old else [])])}


def _install(venv: Path) -> None:
    try:
        if not (venv / "bin" / "python").exists():
            subprocess.run(
                [sys.executable, "-m", "venv", str(venv)], check=True, capture_output=True
            )
        subprocess.run(
            [str(venv / "bin" / "python"), "-m", "pip", "install", "-q", *PACKAGES],
            check=True,
            capture_output=True,
            text=True,
            timeout=900,
        )
    except subprocess.CalledProcessError as exc:
        tail = (exc.stderr or "")[-800:]
        raise PerfAnalyzerUnavailable(f"installing {' '.join(PACKAGES)} failed: {tail}") from exc
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise PerfAnalyzerUnavailable(f"installing {' '.join(PACKAGES)} failed: {exc}") from exc


def _check_libraries(binary: Path, env: dict[str, str]) -> None:
    try:
        ldd = subprocess.run(
            ["ldd", str(binary)], env=env, capture_output=True, text=True, timeout=30
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise PerfAnalyzerUnavailable(f"cannot run ldd on {binary}: {exc}") from exc
    missing = [line.split()[0] for line in ldd.stdout.splitlines() if "not found" in line]
    if any(name.startswith("libb64") for name in missing):
        raise PerfAnalyzerUnavailable(
            "perf_analyzer needs libb64 (Debian: apt-get install libb64-0d); ldd: "
            + ", ".join(missing)
        )
    if missing:
        raise PerfAnalyzerUnavailable(f"perf_analyzer misses shared libraries: {missing}")


def ensure_perf_analyzer(venv: Path = VENV_DIR) -> Path:
    """Install perf_analyzer if needed (idempotent) and return the path of a binary that runs.

    Raises ``PerfAnalyzerUnavailable`` with the reason when it cannot be made to run.
    """
    binary = _find_binary(venv)
    if binary is None:
        venv.parent.mkdir(parents=True, exist_ok=True)
        _install(venv)
        binary = _find_binary(venv)
        if binary is None:
            raise PerfAnalyzerUnavailable(f"no perf_analyzer binary in {venv} after install")
    env = perf_analyzer_env(venv)
    _check_libraries(binary, env)
    try:
        probe = subprocess.run(
            [str(binary), "--help"], env=env, capture_output=True, text=True, timeout=30
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise PerfAnalyzerUnavailable(f"{binary} does not start: {exc}") from exc
    if "concurrency-range" not in probe.stdout + probe.stderr:
        tail = (probe.stdout + probe.stderr)[-500:]
        raise PerfAnalyzerUnavailable(f"{binary} --help failed (rc {probe.returncode}): {tail}")
    return binary


def parse_csv(text: str) -> list[PerfResult]:
    """Rows of perf_analyzer's ``-f`` CSV file (``--verbose-csv`` not needed)."""
    results = []
    for row in csv.DictReader(text.splitlines()):
        results.append(
            PerfResult(
                concurrency=int(float(row["Concurrency"])),
                throughput_per_s=float(row["Inferences/Second"]),
                p50_us=float(row["p50 latency"]),
                p99_us=float(row["p99 latency"]),
            )
        )
    return results


def run_perf_analyzer(
    model: str,
    url: str,
    protocol: str,
    concurrency: int | str,
    measurement_ms: int = 5000,
    *,
    batch_size: int = 1,
    stability_percentage: float = 10000,
    max_trials: int = 4,
    extra_args: list[str] | tuple[str, ...] = (),
    timeout_s: float | None = None,
    binary: Path | None = None,
) -> list[PerfResult]:
    """Run perf_analyzer against ``url`` (host:port) with ``protocol`` "http" or "grpc".

    ``concurrency`` is one level or a range such as ``"1:2"``. Measurement windows are
    time-bounded (``-p measurement_ms``), at most ``max_trials`` windows each; the loose
    default ``stability_percentage`` accepts the noise of two shared cores instead of
    failing the run. The whole run is killed after ``timeout_s`` (default: generous).
    Raises ``RuntimeError`` with perf_analyzer's output when it fails.
    """
    binary = binary or ensure_perf_analyzer()
    levels = str(concurrency).split(":")
    n_levels = len(range(int(levels[0]), int(levels[-1]) + 1)) if len(levels) > 1 else 1
    if timeout_s is None:
        timeout_s = 30 + n_levels * (max_trials + 2) * measurement_ms / 1000
    with tempfile.TemporaryDirectory(prefix="perf-analyzer-") as folder:
        csv_path = Path(folder) / "results.csv"
        command = [
            str(binary),
            "-m", model,
            "-u", url,
            "-i", protocol,
            "-b", str(batch_size),
            "--concurrency-range", str(concurrency),
            "--measurement-mode", "time_windows",
            "-p", str(measurement_ms),
            "--max-trials", str(max_trials),
            "--stability-percentage", str(stability_percentage),
            "--percentile", "99",
            "-f", str(csv_path),
            *extra_args,
        ]  # fmt: skip
        try:
            done = subprocess.run(
                command,
                env=perf_analyzer_env(),
                capture_output=True,
                text=True,
                timeout=timeout_s,
            )
        except subprocess.TimeoutExpired as exc:
            raise RuntimeError(f"perf_analyzer ran past {timeout_s} s: {exc.stdout!r}") from exc
        if done.returncode != 0 or not csv_path.exists():
            raise RuntimeError(
                f"perf_analyzer exited with {done.returncode}:\n{done.stdout[-3000:]}"
                f"\n{done.stderr[-2000:]}"
            )
        return parse_csv(csv_path.read_text())


if __name__ == "__main__":
    print(ensure_perf_analyzer())
