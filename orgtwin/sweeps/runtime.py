"""The Ray runtime a process runs its sweeps on: one per process, shared, and safe.

Ray allows one connection per process, so every sweep of a process — two dashboard
sessions launching sweeps at once, say — goes through :func:`ray_runtime`, which connects
on first use, lets later sweeps share the connection, and disconnects when the last one
ends. A sweep never shuts down Ray under another.

Three kinds of runtime:

* **local** (no address): a Ray head node of this machine, started and stopped for this
  process by a keeper (:mod:`orgtwin.sweeps.keeper`): bound to 127.0.0.1 only, token
  authentication on, no Ray dashboard unless asked for (``dashboard=True`` or
  ``ORGTWIN_RAY_DASHBOARD=1``; it then listens on 127.0.0.1 too). Nothing of it outlives
  this process, however it ends: when the process exits or dies the keeper stops every
  process of the runtime. It runs in a session of its own, so a terminal's Ctrl-C
  interrupts the sweep only, which then winds down in order.
* **a cluster** (an address, or ``RAY_ADDRESS``): connected with token authentication
  unless ``RAY_AUTH_MODE`` says otherwise (see docs/sweeps.md for the cluster's set-up).
* **Ray already initialised in this process** (by the caller): used as it is, never shut
  down here.

The token is Ray's own: ``RAY_AUTH_TOKEN``, the file ``RAY_AUTH_TOKEN_PATH`` names, or
``~/.ray/auth_token``; when none exists, a new random one is written to the last (mode
0600), as ``ray.init`` does.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import secrets
import select
import shutil
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from orgtwin.errors import SweepError
from orgtwin.sweeps.keeper import GRACE_S, START_TIMEOUT_S, stop_marked

DASHBOARD_ENV = "ORGTWIN_RAY_DASHBOARD"
"""Set to ``1`` to start the local runtime with Ray's dashboard (on 127.0.0.1)."""
QUIET: dict[str, Any] = {"log_to_driver": False, "logging_level": logging.ERROR}


def import_ray() -> Any:
    """The ``ray`` module, or a :class:`SweepError` saying how to install it."""
    try:
        import ray
    except ImportError:
        raise SweepError(
            "runner must be 'serial' when Ray is not installed, got 'ray' "
            "(install it with: pip install 'orgtwin[sweep]')"
        ) from None
    return ray


@dataclass
class _Keeper:
    """The keeper process of a local runtime, and what it holds."""

    process: subprocess.Popen[bytes]
    mark: str
    temp_dir: str
    log: IO[bytes]

    def stop(self) -> None:
        """Close the keeper's input (it then stops the runtime) and wait for it."""
        with contextlib.suppress(OSError):
            if self.process.stdin is not None:
                self.process.stdin.close()
        try:
            self.process.wait(timeout=4 * GRACE_S + 30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            stop_marked(self.mark)
        for stream in (self.process.stdout, self.log):
            with contextlib.suppress(OSError):
                if stream is not None:
                    stream.close()
        shutil.rmtree(self.temp_dir, ignore_errors=True)

    def why_not(self) -> str:
        """The end of the keeper's own log (it failed before it could report)."""
        with contextlib.suppress(OSError):
            lines = Path(self.temp_dir, "keeper.log").read_text(errors="replace").splitlines()
            if lines:
                return lines[-1]
        return f"the keeper exited with status {self.process.poll()}"


class _Shared:
    """This process's connection to Ray, counted by the sweeps using it."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.users = 0
        self.owned = False
        self.target: str | None = None
        self.keeper: _Keeper | None = None

    def enter(self, ray: Any, address: str | None, cpus: int | None, dashboard: bool) -> None:
        target = address or os.environ.get("RAY_ADDRESS") or None
        with self.lock:
            if self.users:
                if self.owned and target != self.target:
                    raise SweepError(
                        f"this process already runs a sweep on {_where(self.target)}; a "
                        f"sweep on {_where(target)} must wait until it ends"
                    )
                self.users += 1
                return
            if ray.is_initialized():
                self.owned = False
            elif target:
                _connect(ray, target)
                self.owned = True
            else:
                self.keeper = _start_local(ray, cpus or os.cpu_count() or 1, dashboard)
                self.owned = True
            self.target, self.users = target, 1

    def leave(self, ray: Any) -> None:
        with self.lock:
            self.users -= 1
            if self.users or not self.owned:
                return
            self.owned = False
            try:
                ray.shutdown()
            finally:
                keeper, self.keeper = self.keeper, None
                if keeper is not None:
                    keeper.stop()


_SHARED = _Shared()


@contextlib.contextmanager
def ray_runtime(address: str | None = None, cpus: int | None = None,
                dashboard: bool | None = None) -> Iterator[Any]:  # fmt: skip
    """Use this process's Ray runtime for the duration of the block; yields ``ray``.

    Args:
        address: ``"auto"``, ``"host:port"`` or ``"ray://host:port"`` of a cluster; None
            for ``RAY_ADDRESS`` if set, else a local runtime.
        cpus: CPUs of a local runtime the block starts (default: every core); a runtime
            already running is shared as it is.
        dashboard: start a local runtime with Ray's dashboard (default: from
            ``ORGTWIN_RAY_DASHBOARD``).

    Raises:
        SweepError: Ray is not installed, could not be started or reached, or this
            process is already connected to another cluster for another sweep.
    """
    ray = import_ray()
    if dashboard is None:
        dashboard = os.environ.get(DASHBOARD_ENV, "") not in ("", "0")
    _SHARED.enter(ray, address, cpus, dashboard)
    try:
        yield ray
    finally:
        _SHARED.leave(ray)


def _where(target: str | None) -> str:
    return f"the Ray cluster at {target}" if target else "a local Ray"


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _connect(ray: Any, target: str) -> None:
    """Join the cluster at ``target``, with token authentication unless told otherwise."""
    os.environ.setdefault("RAY_AUTH_MODE", "token")
    _refresh_auth_mode()
    try:
        ray.init(address=target, **QUIET)
    except Exception as exc:  # Ray raises many kinds here; all mean "not reached"
        ray.shutdown()
        hint = ""
        if os.environ.get("RAY_AUTH_MODE") == "token":
            hint = (" (the cluster must use token authentication with the same token; "
                    "see docs/sweeps.md)")  # fmt: skip
        raise SweepError(f"could not reach the Ray cluster at {target}: "
                         f"{_first_line(exc)}{hint}") from exc  # fmt: skip


def _start_local(ray: Any, cpus: int, dashboard: bool) -> _Keeper:
    """Start a local runtime through a keeper and connect to it."""
    ensure_token()
    os.environ["RAY_AUTH_MODE"] = "token"  # as ray.init does for a local Ray
    _refresh_auth_mode()
    keeper = _spawn_keeper(cpus, dashboard)
    try:
        address = _await_address(keeper)
        with _loopback_node():
            ray.init(address=address, **QUIET)
    except BaseException as exc:
        with contextlib.suppress(Exception):
            ray.shutdown()
        keeper.stop()
        if isinstance(exc, SweepError):
            raise
        if not isinstance(exc, Exception):  # KeyboardInterrupt while starting
            raise
        raise SweepError(f"could not start a local Ray: {_first_line(exc)}") from exc
    return keeper


def _spawn_keeper(cpus: int, dashboard: bool) -> _Keeper:
    base = tempfile.gettempdir()
    base = base if len(base) <= 32 else "/tmp"  # Ray's socket paths must stay short
    temp_dir = tempfile.mkdtemp(prefix="orgtwin-ray-", dir=base)
    mark = f"{os.getpid()}-{secrets.token_hex(6)}"
    log = open(Path(temp_dir, "keeper.log"), "wb")  # noqa: SIM115 (closed by _Keeper.stop)
    command = [sys.executable, "-m", "orgtwin.sweeps.keeper", "--mark", mark, f"--cpus={cpus}",
               "--temp-dir", temp_dir, *(["--dashboard"] if dashboard else [])]  # fmt: skip
    process = subprocess.Popen(
        command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log,
        start_new_session=True, env={**os.environ, "RAY_AUTH_MODE": "token"},
    )  # fmt: skip
    return _Keeper(process, mark, temp_dir, log)


def _await_address(keeper: _Keeper) -> str:
    """The address the keeper reports, once its runtime is up."""
    stdout = keeper.process.stdout
    assert stdout is not None
    ready, _, _ = select.select([stdout], [], [], START_TIMEOUT_S + 30)
    line = stdout.readline() if ready else b""
    try:
        report = json.loads(line)
    except ValueError:
        if not ready:
            raise SweepError(
                f"a local Ray did not start within {START_TIMEOUT_S + 30:.0f} s"
            ) from None
        raise SweepError(f"could not start a local Ray: {keeper.why_not()}") from None
    if "error" in report:
        raise SweepError(f"could not start a local Ray: {report['error']}")
    return str(report["address"])


@contextlib.contextmanager
def _loopback_node() -> Iterator[None]:
    """While connecting, let Ray keep 127.0.0.1 as this driver's address.

    Ray swaps 127.0.0.1 for the machine's address unless clusters are disabled, which is
    what the keeper's ``RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0`` does for the node; this
    process read that setting when it imported Ray, so it is set here for the connection
    only. The driver then serves on 127.0.0.1 too.
    """
    try:
        from ray._private import ray_constants
    except ImportError:  # a Ray without the setting: the socket test would tell
        yield
        return
    before = ray_constants.ENABLE_RAY_CLUSTER
    ray_constants.ENABLE_RAY_CLUSTER = False
    try:
        yield
    finally:
        ray_constants.ENABLE_RAY_CLUSTER = before


def _refresh_auth_mode() -> None:
    """Make Ray, if it read its settings before ``RAY_AUTH_MODE`` changed, read them again."""
    with contextlib.suppress(ImportError, AttributeError):
        from ray._raylet import AuthenticationMode, Config, get_authentication_mode

        wanted = os.environ.get("RAY_AUTH_MODE") == "token"
        if (get_authentication_mode() == AuthenticationMode.TOKEN) != wanted:
            Config.initialize("")


def ensure_token() -> None:
    """Make sure Ray finds a token; write a new random one to ``~/.ray/auth_token`` if not."""
    if os.environ.get("RAY_AUTH_TOKEN") or os.environ.get("RAY_AUTH_TOKEN_PATH"):
        return
    path = Path.home() / ".ray" / "auth_token"
    if path.exists():
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".auth_token.{os.getpid()}.tmp")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as file:
        file.write(secrets.token_hex(32))
    try:
        os.link(temporary, path)  # never replaces a token another process just wrote
    except FileExistsError:
        pass
    finally:
        temporary.unlink(missing_ok=True)
    with contextlib.suppress(ImportError, AttributeError):
        from ray._raylet import AuthenticationTokenLoader

        AuthenticationTokenLoader.instance().reset_cache()
