"""A sweep on a real two-node Ray cluster gives the rows of the serial runner.

The test starts its own cluster on this machine — a head node and one worker node, one
CPU each, with token authentication and ``--node-ip-address=127.0.0.1`` — under a short
temporary folder of its own. Teardown stops only the processes whose command line names
that folder (and their children), never ``ray stop``, which would stop every Ray here.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

import psutil
import pytest

from orgtwin.scenario.spec import Scenario
from orgtwin.sweeps.api import SweepResult, sweep

pytestmark = [
    pytest.mark.slow,
    pytest.mark.timeout(300),
    pytest.mark.skipif(
        importlib.util.find_spec("ray") is None,
        reason="Ray is not installed (pip install 'orgtwin[sweep]')",
    ),
]
RAY = Path(sys.executable).parent / "ray"
LEVERS = {"teams.platform.oncall_size": "1..3", "services.*.spot_share": "0,0.8"}


class Cluster(NamedTuple):
    address: str
    temp_dir: str
    auth: dict[str, str]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def own_processes(temp_dir: str) -> list[psutil.Process]:
    """Processes whose command line names ``temp_dir``, and all their children."""
    found: dict[int, psutil.Process] = {}
    for proc in psutil.process_iter(["cmdline"]):
        if any(temp_dir in part for part in proc.info["cmdline"] or ()):
            found[proc.pid] = proc
            with contextlib.suppress(psutil.Error):
                found |= {child.pid: child for child in proc.children(recursive=True)}
    return list(found.values())


def stop(temp_dir: str) -> None:
    procs = own_processes(temp_dir)
    for proc in procs:
        with contextlib.suppress(psutil.Error):
            proc.terminate()
    _, alive = psutil.wait_procs(procs, timeout=3)
    for proc in alive:
        with contextlib.suppress(psutil.Error):
            proc.kill()
    psutil.wait_procs(alive, timeout=10)


def start(args: list[str], env: dict[str, str]) -> None:
    done = subprocess.run(
        [str(RAY), "start", *args, "--disable-usage-stats"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"ray start {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}")


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    """A head node and a worker node on 127.0.0.1, token authentication on."""
    temp_dir = tempfile.mkdtemp(prefix="otr", dir="/tmp")  # short: unix socket paths
    port = free_port()
    auth = {"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": secrets.token_hex(16)}
    env = {**os.environ, **auth, "RAY_USAGE_STATS_ENABLED": "0"}
    local = ["--node-ip-address=127.0.0.1", "--num-cpus=1", f"--temp-dir={temp_dir}"]
    try:
        head = ["--head", f"--port={port}", "--include-dashboard=false"]
        start([*head, "--dashboard-host=127.0.0.1", f"--dashboard-port={free_port()}", *local], env)
        start([f"--address=127.0.0.1:{port}", *local], env)
        yield Cluster(f"127.0.0.1:{port}", temp_dir, auth)
    finally:
        stop(temp_dir)
        left = own_processes(temp_dir)
        shutil.rmtree(temp_dir, ignore_errors=True)
        assert not left, f"Ray processes of the test left running: {left}"


DRIVER = """
import json, sys
import ray
from orgtwin import load_scenario, sweep

address, spec, levers, out = sys.argv[1], *map(json.loads, sys.argv[2:4]), sys.argv[4]
ray.init(address=address, log_to_driver=False)
nodes = sum(1 for node in ray.nodes() if node["Alive"])
ray.shutdown()
result = sweep(load_scenario(spec), levers, seeds=2, days=3, series="none", out=out,
               address=address)
print(json.dumps({"nodes": nodes, "runner": result.runner, "workers": result.workers,
                  "connected_after": ray.is_initialized()}))
"""
"""The driver runs in a process of its own: Ray keeps the token of a cluster it joined in
process-wide state, which would leak into the local Ray of later tests."""


def test_a_sweep_on_a_two_node_cluster_matches_the_serial_rows(
    cluster: Cluster, small_spec: dict, small_scenario: Scenario, tmp_path: Path
):
    done = subprocess.run(
        [sys.executable, "-c", DRIVER, cluster.address, json.dumps(small_spec),
         json.dumps(LEVERS), str(tmp_path / "cluster")],
        env={**os.environ, **cluster.auth},
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report == {"nodes": 2, "runner": "ray", "workers": 2, "connected_after": False}
    remote = SweepResult.load(tmp_path / "cluster")
    serial = sweep(small_scenario, LEVERS, seeds=2, days=3, series="none",
                   out=tmp_path / "serial", runner="serial")  # fmt: skip
    assert remote.runs.height == 6 * 2
    assert remote.runs.drop("wall_s").equals(serial.runs.drop("wall_s"))
