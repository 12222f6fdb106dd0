"""The Ray runtime of sweeps (orgtwin/sweeps/runtime.py and keeper.py): safe and shared.

A local sweep's Ray serves on 127.0.0.1 only, with token authentication and without
Ray's dashboard, and refuses a client without the token; two sweeps of one process at
once share one runtime and both finish; whatever ends the driver — its end, Ctrl-C to it
or to its terminal's process group, SIGKILL — no process of the runtime outlives it.
The fast tests check the pieces without starting Ray.
"""

from __future__ import annotations

import importlib.util
import ipaddress
import os
import signal
import stat
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import psutil
import pytest

from orgtwin.scenario.spec import Scenario
from orgtwin.sweeps import keeper, runtime
from orgtwin.sweeps.api import SweepResult

ROOT = Path(__file__).resolve().parents[2]
needs_ray = pytest.mark.skipif(
    importlib.util.find_spec("ray") is None,
    reason="Ray is not installed (pip install 'orgtwin[sweep]')",
)
LEFT_S = 30
"""Seconds the runtime has to be gone after its driver ends (SIGTERM grace included)."""


def alive(procs: list[psutil.Process]) -> list[psutil.Process]:
    out = []
    for proc in procs:
        try:
            if proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE:
                out.append(proc)
        except psutil.Error:
            continue
    return out


def left_of(pid: int, within_s: float = LEFT_S) -> list[psutil.Process]:
    """Processes of the runtimes ``pid`` started still alive after ``within_s`` at most."""
    deadline = time.monotonic() + within_s
    while True:
        left = alive(keeper.started_by(pid))
        if not left or time.monotonic() > deadline:
            return left
        time.sleep(0.25)


def is_loopback(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%")[0])
    mapped = getattr(ip, "ipv4_mapped", None)
    return (mapped or ip).is_loopback


# --------------------------------------------------------------------------- pieces


def test_the_runtime_environment_and_command_keep_ray_on_loopback():
    env = keeper.runtime_env("m-1", base={"PATH": "/bin", "RAY_AUTH_MODE": "disabled"})
    assert env[keeper.MARK] == "m-1" and env["PATH"] == "/bin"
    assert env["RAY_AUTH_MODE"] == "token"  # a local runtime is never without tokens
    assert env["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] == "0"
    assert env["AUTOSCALER_METRIC_PORT"] != env["DASHBOARD_METRIC_PORT"]
    plain = keeper.start_command(6380, 3, "/tmp/x", dashboard=False)
    assert {"--head", "--node-ip-address=127.0.0.1", "--port=6380", "--num-cpus=3"} <= set(plain)
    assert "--include-dashboard=false" in plain
    assert not [arg for arg in plain if arg.startswith("--dashboard-host")]
    asked = keeper.start_command(6380, 3, "/tmp/x", dashboard=True)
    assert "--include-dashboard=true" in asked and "--dashboard-host=127.0.0.1" in asked
    ports = [arg.split("=")[1] for arg in plain if arg.split("=")[0].endswith("port")]
    assert len(ports) == 3 and len(set(ports)) == 3
    assert not {"10001", "52365"} & set(ports)  # Ray's fixed defaults: two runtimes collide


def test_a_token_is_written_once_readable_by_its_owner_only(monkeypatch, tmp_path: Path):
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv("RAY_AUTH_TOKEN", raising=False)
    monkeypatch.delenv("RAY_AUTH_TOKEN_PATH", raising=False)
    runtime.ensure_token()
    token = tmp_path / ".ray" / "auth_token"
    first = token.read_text()
    assert len(first) == 64 and int(first, 16) >= 0
    assert stat.S_IMODE(token.stat().st_mode) == 0o600
    runtime.ensure_token()
    assert token.read_text() == first  # an existing token is kept
    assert [p.name for p in token.parent.iterdir()] == ["auth_token"]


def test_a_token_given_in_the_environment_writes_nothing(monkeypatch, tmp_path: Path):
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("RAY_AUTH_TOKEN", "f" * 64)
    runtime.ensure_token()
    assert not (tmp_path / ".ray").exists()


def test_stop_marked_stops_only_the_marked_processes():
    mark = f"test-{os.getpid()}-{time.monotonic_ns()}"
    sleep = [sys.executable, "-c", "import time; time.sleep(60)"]
    ignores_term = [sys.executable, "-c",
                    "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
                    "print('ready', flush=True); time.sleep(60)"]  # fmt: skip
    env = {**os.environ, keeper.MARK: mark}
    ours = [subprocess.Popen(sleep, env=env),
            subprocess.Popen(ignores_term, env=env, stdout=subprocess.PIPE)]  # fmt: skip
    other = subprocess.Popen(sleep)
    try:
        assert ours[1].stdout is not None and ours[1].stdout.readline() == b"ready\n"
        assert {p.pid for p in keeper.marked(mark)} == {p.pid for p in ours}
        assert keeper.stop_marked(mark, grace_s=0.5) == 2  # the second needed SIGKILL
        assert not alive([psutil.Process(p.pid) for p in ours if psutil.pid_exists(p.pid)])
        assert other.poll() is None and not keeper.marked(mark)
    finally:
        for proc in [*ours, other]:
            proc.kill()
            proc.wait()


# --------------------------------------------------------------------------- Ray


def listening(pids: set[int]) -> dict[tuple[str, int], str]:
    found = {}
    for conn in psutil.net_connections(kind="inet"):
        if conn.status == psutil.CONN_LISTEN and conn.pid in pids:
            try:
                name = psutil.Process(conn.pid).name()
            except psutil.Error:
                name = "?"
            found[(conn.laddr.ip, conn.laddr.port)] = name
    return found


@pytest.mark.slow
@pytest.mark.timeout(300)
@needs_ray
def test_a_local_sweep_serves_on_loopback_only_with_tokens_and_no_dashboard(
    small_scenario: Scenario, tmp_path: Path, tiny_sweep: Any
):
    seen: dict[tuple[str, int], str] = {}
    envs: list[dict[str, str]] = []
    commands: list[str] = []

    def look(done: int, total: int, elapsed: float, eta: Any) -> None:
        procs = alive(keeper.started_by(os.getpid()))
        seen.update(listening({p.pid for p in procs} | {os.getpid()}))
        for proc in procs:
            try:
                envs.append(proc.environ())
                commands.append(" ".join(proc.cmdline()))
            except psutil.Error:
                continue

    result = tiny_sweep(small_scenario, tmp_path, runner="ray", workers=2, progress=look)
    assert result.runner == "ray" and result.runs.height == 9 * 2
    names = set(seen.values())
    assert {"gcs_server", "raylet"} <= names, names  # the servers were looked at
    outside = {address: name for address, name in seen.items() if not is_loopback(address[0])}
    assert not outside, f"listening beyond 127.0.0.1: {outside}"
    assert envs and all(env.get("RAY_AUTH_MODE") == "token" for env in envs)
    heads = [c for c in commands if "dashboard/dashboard.py" in c]  # Ray keeps a headless one
    assert heads and all("--disable-frontend" in c for c in heads), heads
    assert not left_of(os.getpid())


CONNECT = """
import sys, ray
ray.init(address=sys.argv[1])
print("CONNECTED", flush=True)
"""


def _until(process: subprocess.Popen[str], marks: tuple[str, ...], within_s: float) -> str:
    """What ``process`` printed until a line with one of ``marks``, its end, or the time."""
    assert process.stdout is not None
    lines: list[str] = []
    timer = threading.Timer(within_s, os.killpg, (process.pid, signal.SIGKILL))
    timer.start()
    try:
        for line in process.stdout:
            lines.append(line)
            if any(mark in line for mark in marks):
                break
    finally:
        timer.cancel()
    return "".join(lines)


@pytest.mark.slow
@pytest.mark.timeout(300)
@needs_ray
def test_a_client_without_the_token_is_refused():
    with runtime.ray_runtime(cpus=1) as ray:
        address = ray.get_runtime_context().gcs_address
        assert address.startswith("127.0.0.1:")
        for wrong in ({"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": "0" * 64},
                      {"RAY_AUTH_MODE": "disabled"}):  # fmt: skip
            env = {**os.environ, **wrong, "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0"}
            client = subprocess.Popen([sys.executable, "-c", CONNECT, address], env=env,
                                      stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                      text=True, start_new_session=True)  # fmt: skip
            try:
                said = _until(client, ("CONNECTED", "InvalidAuthToken"), within_s=60)
            finally:  # the client retries for 20 s before it gives up: stop it at once
                os.killpg(client.pid, signal.SIGKILL)
                client.communicate()
            assert "CONNECTED" not in said, wrong
            assert "Unauthenticated" in said, (wrong, said[-2000:])
    assert not left_of(os.getpid())


@pytest.mark.slow
@pytest.mark.timeout(400)
@needs_ray
def test_two_sweeps_at_once_share_one_runtime_and_both_finish(
    small_scenario: Scenario, tmp_path: Path, tiny_sweep: Any, monkeypatch
):
    spawned: list[int] = []
    real_spawn = runtime._spawn_keeper

    def counted(*args: Any) -> Any:
        spawned.append(1)
        return real_spawn(*args)

    monkeypatch.setattr(runtime, "_spawn_keeper", counted)
    results: dict[str, SweepResult] = {}
    errors: list[BaseException] = []

    def one(name: str) -> None:
        try:
            results[name] = tiny_sweep(small_scenario, tmp_path / name, runner="ray", workers=2)
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=one, args=(name,)) for name in ("a", "b")]
    for thread in threads:
        thread.start()
        time.sleep(0.5)  # the second arrives while the first starts Ray
    for thread in threads:
        thread.join(timeout=350)
    assert not errors, errors
    serial = tiny_sweep(small_scenario, tmp_path / "serial")
    for name in ("a", "b"):
        assert results[name].runner == "ray"
        assert tiny_sweep.rows(results[name]).equals(tiny_sweep.rows(serial))
    assert len(spawned) == 1
    assert not left_of(os.getpid())


# --------------------------------------------------------------------------- interrupts


def start_cli_sweep(out: Path) -> subprocess.Popen[str]:
    """``orgtwin sweep`` on Ray, in a process group of its own (like a terminal's job)."""
    command = [sys.executable, "-m", "orgtwin.cli", "sweep", str(ROOT / "scenarios/baseline.yaml"),
               "--lever", "teams.platform.oncall_size=1..8", "--seeds", "6", "--days", "20",
               "--runner", "ray", "--workers", "2", "--series", "none",
               "--out", str(out)]  # fmt: skip
    return subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, start_new_session=True)  # fmt: skip


def wait_for_runs(driver: subprocess.Popen[str], out: Path) -> None:
    """Until the sweep has saved a run and its runtime is up."""
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:
        if driver.poll() is not None:
            pytest.fail(f"the sweep ended early: {driver.communicate()[1][-2000:]}")
        if list(out.glob("runs/*.parquet")) and keeper.started_by(driver.pid):
            return
        time.sleep(0.2)
    pytest.fail("the sweep saved no run in 240 s")


@pytest.mark.slow
@pytest.mark.timeout(400)
@needs_ray
@pytest.mark.parametrize("to_group", [False, True], ids=["to-driver", "to-process-group"])
def test_ctrl_c_stops_the_sweep_in_order_and_leaves_nothing(tmp_path: Path, to_group: bool):
    driver = start_cli_sweep(tmp_path / "out")
    wait_for_runs(driver, tmp_path / "out")
    if to_group:  # what a terminal does: every process of the foreground job
        os.killpg(driver.pid, signal.SIGINT)
    else:
        os.kill(driver.pid, signal.SIGINT)
    _, err = driver.communicate(timeout=120)
    assert driver.returncode == 130, err[-3000:]
    assert "sweep interrupted" in err and "rerun the same command" in err
    assert "Traceback" not in err and "Check failed" not in err, err[-3000:]
    assert not left_of(driver.pid)


@pytest.mark.slow
@pytest.mark.timeout(400)
@needs_ray
def test_nothing_of_the_runtime_outlives_a_killed_driver(tmp_path: Path):
    driver = start_cli_sweep(tmp_path / "out")
    wait_for_runs(driver, tmp_path / "out")
    running = alive(keeper.started_by(driver.pid))
    assert {"gcs_server", "raylet"} <= {p.name() for p in running}
    driver.kill()
    driver.communicate(timeout=60)
    assert not left_of(driver.pid)
