"""The README's promises: its two set-up commands, and the quickstart's printed curl."""

from __future__ import annotations

import json
import os
import re
import shlex
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


def _setup_commands() -> list[str]:
    readme = (ROOT / "README.md").read_text()
    block = re.search(r"```bash\n(.*?)```", readme, re.DOTALL)
    assert block is not None, "the README starts with a bash block of set-up commands"
    return [line for line in block.group(1).splitlines() if line.strip()]


def test_readme_opens_with_exactly_two_setup_commands_and_ci_runs_the_second() -> None:
    install_and_run, install_and_test = _setup_commands()
    assert install_and_run.endswith("maas quickstart")
    assert "pytest" in install_and_test
    assert install_and_test in (ROOT / ".ci" / "run").read_text().splitlines()


def test_quickstart_trains_serves_and_its_printed_curl_predicts(tmp_path: Path) -> None:
    port, grpc_port = free_ports(2)
    env = {
        **os.environ,
        "MAAS_HOME": str(tmp_path / ".maas"),
        "MAAS_PORT": str(port),
        "MAAS_GRPC_PORT": str(grpc_port),
    }
    maas = Path(sys.executable).parent / "maas"
    log = tmp_path / "quickstart.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [str(maas), "quickstart"], cwd=tmp_path, env=env, stdout=out, stderr=subprocess.STDOUT
        )
    try:
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline:
            assert process.poll() is None, log.read_text()
            try:
                if (
                    httpx.get(f"http://127.0.0.1:{port}/v2/health/ready", timeout=1).status_code
                    == 200
                ):
                    break
            except httpx.TransportError:
                pass
            time.sleep(0.2)
        else:
            pytest.fail("quickstart did not serve in time:\n" + log.read_text())

        printed = log.read_text()
        curl_line = next(line for line in printed.splitlines() if line.startswith("curl "))
        assert f"http://127.0.0.1:{port}/v2/models/digits/infer" in curl_line
        told = re.search(r"image of the digit (\d)", printed)
        assert told is not None, printed
        digit = int(told.group(1))
        result = subprocess.run(shlex.split(curl_line), capture_output=True, text=True, timeout=30)
        assert result.returncode == 0, result.stderr
        reply = json.loads(result.stdout)
        label = next(o for o in reply["outputs"] if o["name"] == "label")
        assert label["data"] == [digit]
        assert "accuracy" in printed
    finally:
        stop_process(process, signal.SIGINT)


def test_readme_job_spec_example_is_a_valid_spec() -> None:
    import yaml

    from maas.training.spec import parse_spec

    readme = (ROOT / "README.md").read_text()
    block = re.search(r"```yaml\n(.*?)```", readme, re.DOTALL)
    assert block is not None
    spec = parse_spec(yaml.safe_load(block.group(1)))
    assert spec.model.name == "cnn" and spec.dataset.kind == "images"


def test_readme_training_tour_spec_is_a_valid_spec() -> None:
    import yaml

    from maas.training.spec import parse_spec

    readme = (ROOT / "README.md").read_text()
    block = re.search(r"cat > cnn.yaml <<'YAML'\n(.*?)\nYAML\n", readme, re.DOTALL)
    assert block is not None
    spec = parse_spec(yaml.safe_load(block.group(1)))
    assert (spec.model.name, spec.dataset.kind, spec.model_name) == ("cnn", "digits", "digits")
