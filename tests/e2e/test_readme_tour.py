"""The README's tour, run as written: every ``bash`` and ``python`` block after the set-up
commands, in order, in one shell, against ``maas quickstart`` in a fresh folder.

The only change made to the text is the port: the blocks say 127.0.0.1:8080 and 8081,
the test serves on free ports. ``.venv`` in the folder is this test's own environment.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from maas.testing.processes import free_ports, stop_process

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
TOUR_TIMEOUT_S = 900


def tour_script(readme: str, port: int, grpc_port: int) -> str:
    """One bash script of the README's blocks after its set-up block (python blocks run
    with the environment's python), the ports replaced."""
    blocks = re.findall(r"```(bash|python)\n(.*?)```", readme, re.DOTALL)
    assert blocks and blocks[0][0] == "bash", "the README starts with its set-up block"
    parts = ["set -euo pipefail"]
    for language, text in blocks[1:]:
        text = text.replace("127.0.0.1:8080", f"127.0.0.1:{port}")
        text = text.replace("127.0.0.1:8081", f"127.0.0.1:{grpc_port}")
        if language == "bash":
            parts.append(text)
        else:
            parts.append(f".venv/bin/python - <<'PYTHON'\n{text}PYTHON")
    return "\n".join(parts) + "\n"


def _wait_ready(url: str, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        assert process.poll() is None, log.read_text()
        try:
            if httpx.get(f"{url}/v2/health/ready", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    pytest.fail("quickstart did not serve in time:\n" + log.read_text())


def test_the_readme_tour_runs_as_written(tmp_path: Path) -> None:
    port, grpc_port = free_ports(2)
    (tmp_path / ".venv").symlink_to(Path(sys.executable).parent.parent)
    env = {k: v for k, v in os.environ.items() if not k.startswith("MAAS_")}
    env |= {"MAAS_PORT": str(port), "MAAS_GRPC_PORT": str(grpc_port), "COLUMNS": "200"}
    log = tmp_path / "quickstart.log"
    with log.open("wb") as out:
        server = subprocess.Popen(
            [".venv/bin/maas", "quickstart"],
            cwd=tmp_path,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        _wait_ready(f"http://127.0.0.1:{port}", server, log)
        script = tmp_path / "tour.sh"
        script.write_text(tour_script((ROOT / "README.md").read_text(), port, grpc_port))
        tour = subprocess.run(
            ["bash", str(script)],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=TOUR_TIMEOUT_S,
            check=False,
        )
        shown = f"exit {tour.returncode}\n--- stdout\n{tour.stdout}\n--- stderr\n{tour.stderr}"
        assert tour.returncode == 0, shown
        printed = tour.stdout
        assert '"label"' in printed and "digits@production -> version 1" in printed, shown
        assert "(was " in printed, shown  # the rollback said where it came from
        assert '"agreement": 1.0' in printed, shown  # v1 and v2 agree on the example
        assert "refused: version 999 of model 'digits' not found" in printed, shown  # the SDK
        assert "archived my-model version 1" in printed, shown
        assert "queued" in printed or "cancelled" in printed, shown
        assert "serves another registry" not in tour.stderr, shown
        assert "the same bytes again: 200" in printed, shown  # an upload retried is no copy
        assert "without a key: 401" in printed, shown  # the security model's first key
        assert "with the key: 200" in printed, shown  # ...and the predict-only key infers
    finally:
        stop_process(server, signal.SIGINT)
