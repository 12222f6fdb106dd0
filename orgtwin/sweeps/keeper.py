"""Keeps a local Ray runtime for the process that asked for it, and stops it after.

Run by :mod:`orgtwin.sweeps.runtime` as ``python -m orgtwin.sweeps.keeper``, in a session
of its own, so that a terminal's Ctrl-C reaches the sweep's driver only (which then stops
in order) and never Ray's own processes. The keeper

1. starts a Ray head node with ``ray start --head``: bound to 127.0.0.1 only (every
   server of the node: GCS, raylet, workers, agents, the client server), token
   authentication on, single-node (no other machine can join), Ray's dashboard off unless
   asked for, and every port its own (two runtimes on one machine never collide);
2. prints one JSON line on its standard output: ``{"address": "127.0.0.1:<port>"}``, or
   ``{"error": "..."}`` when the head did not start;
3. waits for its standard input to close. The driver closes it when it is done, and the
   system closes it when the driver dies, even by SIGKILL;
4. stops every process that carries the runtime's mark (:data:`MARK`, an environment
   variable every process of the runtime inherits, Ray's workers and agents included) —
   SIGTERM, then SIGKILL after :data:`GRACE_S` — and removes the runtime's folder.

Only the standard library and psutil are imported: the keeper starts in a fraction of a
second and never imports Ray itself.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
from collections.abc import Callable, Sequence
from typing import Any

MARK = "ORGTWIN_RAY_RUNTIME"
"""Environment variable whose value names one local runtime; all its processes carry it."""
GRACE_S = 5.0
"""Seconds a process of the runtime has to exit after SIGTERM before it gets SIGKILL."""
START_TIMEOUT_S = 180.0
"""Most seconds ``ray start`` may take before the keeper gives up."""
LOOPBACK = "127.0.0.1"


def free_port() -> int:
    """A TCP port free on the loopback interface right now."""
    with socket.socket() as sock:
        sock.bind((LOOPBACK, 0))
        return sock.getsockname()[1]


def runtime_env(mark: str, base: dict[str, str] | None = None) -> dict[str, str]:
    """The environment of every process of the runtime ``mark`` (see the module notes).

    ``RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0`` makes Ray keep 127.0.0.1 as the node's address
    instead of swapping in the machine's, and a node at 127.0.0.1 binds its servers to
    the loopback interface only. The metrics ports Ray otherwise fixes are drawn free.
    """
    return {
        **(os.environ if base is None else base),
        MARK: mark,
        "RAY_AUTH_MODE": "token",
        "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0",
        "RAY_USAGE_STATS_ENABLED": "0",
        "AUTOSCALER_METRIC_PORT": str(free_port()),
        "DASHBOARD_METRIC_PORT": str(free_port()),
    }


def start_command(port: int, cpus: int, temp_dir: str, dashboard: bool) -> list[str]:
    """``ray start --head`` for a loopback-only node with ``cpus`` CPUs."""
    look = (
        [
            "--include-dashboard=true",
            f"--dashboard-host={LOOPBACK}",
            f"--dashboard-port={free_port()}",
        ]
        if dashboard
        else ["--include-dashboard=false"]
    )
    return [
        sys.executable, "-m", "ray.scripts.scripts", "start", "--head",
        f"--node-ip-address={LOOPBACK}", f"--port={port}", f"--num-cpus={cpus}",
        f"--temp-dir={temp_dir}", f"--ray-client-server-port={free_port()}",
        f"--dashboard-agent-listen-port={free_port()}", *look, "--disable-usage-stats",
    ]  # fmt: skip


def marked(mark: str) -> list[Any]:
    """Live processes of this user, other than this one, that carry the mark ``mark``."""
    return _carrying(lambda value: value == mark)


def started_by(pid: int) -> list[Any]:
    """Live processes of the local runtimes that the process ``pid`` started.

    A runtime's mark begins with the pid of the process that asked for it (see
    :mod:`orgtwin.sweeps.runtime`); this finds them after that process is gone, too.
    """
    return _carrying(lambda value: value.startswith(f"{pid}-"))


def _carrying(match: Callable[[str], bool]) -> list[Any]:
    import psutil

    uid, me, found = os.getuid(), os.getpid(), []
    for proc in psutil.process_iter(["uids", "status"]):
        if proc.pid == me or proc.info["status"] == psutil.STATUS_ZOMBIE:
            continue
        with contextlib.suppress(psutil.Error):
            if proc.info["uids"].real == uid and match(proc.environ().get(MARK, "")):
                found.append(proc)
    return found


def stop_marked(mark: str, grace_s: float = GRACE_S) -> int:
    """Stop every process of the runtime ``mark``: SIGTERM, then SIGKILL; returns how many.

    Repeats until none is left, since a process may start another while the first ones
    stop (a raylet starting a worker).
    """
    import psutil

    stopped = 0
    for _ in range(10):
        procs = marked(mark)
        if not procs:
            break
        stopped += len(procs)
        for proc in procs:
            with contextlib.suppress(psutil.Error):
                proc.terminate()
        _, alive = psutil.wait_procs(procs, timeout=grace_s)
        for proc in alive:
            with contextlib.suppress(psutil.Error):
                proc.kill()
        psutil.wait_procs(alive, timeout=grace_s)
    return stopped


def _report(message: dict[str, Any]) -> bool:
    """Print one JSON line to the driver; False when the driver is gone."""
    try:
        sys.stdout.write(json.dumps(message) + "\n")
        sys.stdout.flush()
    except (BrokenPipeError, OSError):
        return False
    return True


def _start(port: int, cpus: int, temp_dir: str, dashboard: bool, env: dict[str, str]) -> str | None:
    """Start the head; None when it started, else why not (the end of Ray's own output)."""
    try:
        done = subprocess.run(
            start_command(port, cpus, temp_dir, dashboard),
            env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True,
            timeout=START_TIMEOUT_S, check=False,
        )  # fmt: skip
    except subprocess.TimeoutExpired:
        return f"ray start did not finish within {START_TIMEOUT_S:.0f} s"
    if done.returncode == 0:
        return None
    lines = [line for line in (done.stderr + done.stdout).splitlines() if line.strip()]
    return "ray start failed: " + " | ".join(lines[-5:])


def _adopt_orphans() -> None:
    """Become the parent of the runtime's processes when ``ray start`` leaves them (Linux).

    They then stay in this process's tree (under the driver's while it lives) and the
    keeper reaps them when they exit. Elsewhere the marks alone find them.
    """
    with contextlib.suppress(OSError, AttributeError):
        import ctypes

        pr_set_child_subreaper = 36
        ctypes.CDLL(None, use_errno=True).prctl(pr_set_child_subreaper, 1, 0, 0, 0)


def main(argv: Sequence[str] | None = None) -> int:
    """Start the runtime, report its address, wait for the driver, stop the runtime."""
    parser = argparse.ArgumentParser(prog="python -m orgtwin.sweeps.keeper")
    parser.add_argument("--mark", required=True)
    parser.add_argument("--cpus", type=int, required=True)
    parser.add_argument("--temp-dir", required=True)
    parser.add_argument("--dashboard", action="store_true")
    args = parser.parse_args(argv)

    def stop(*_: object) -> None:
        stop_marked(args.mark)
        shutil.rmtree(args.temp_dir, ignore_errors=True)
        with contextlib.suppress(ChildProcessError):
            while os.waitpid(-1, os.WNOHANG)[0]:  # reap what exited before
                pass

    def on_signal(signum: int, _frame: object) -> None:
        stop()
        os._exit(128 + signum)

    for signum in (signal.SIGTERM, signal.SIGHUP, signal.SIGINT):
        signal.signal(signum, on_signal)
    _adopt_orphans()
    try:
        port = free_port()
        error = _start(port, args.cpus, args.temp_dir, args.dashboard, runtime_env(args.mark))
        told = _report({"error": error} if error else {"address": f"{LOOPBACK}:{port}"})
        if told and error is None:
            sys.stdin.buffer.read()  # returns at EOF: the driver is done, or dead
    finally:
        stop()
    return 0 if error is None else 1


if __name__ == "__main__":
    sys.exit(main())
