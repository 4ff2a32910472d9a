"""`taawun ui`: the MLflow UI on the project's tracking store, served on 127.0.0.1:5050 by default."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time

from train.errors import TaawunError
from train.tracking.store import artifact_root, check_store

# A stable address to bookmark. Not MLflow's 5000, which macOS's AirPlay receiver takes.
DEFAULT_PORT = 5050
LOOPBACK = ("127.0.0.1", "localhost", "::1")


def free_port(host: str = "127.0.0.1") -> int:
    """A free TCP port on `host`."""
    with socket.socket() as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def port_is_free(host: str, port: int) -> bool:
    """Whether a server could listen on `host`:`port` now."""
    with socket.socket() as sock:
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def ui_command(uri: str, port: int, host: str = "127.0.0.1") -> list[str]:
    """The command that serves the MLflow UI for the store `uri` on `host`:`port`."""
    # One worker: one person browses it; MLflow's default of four starts four copies of the server.
    command = [sys.executable, "-m", "mlflow", "ui", "--backend-store-uri", uri, "--host", host, "--port", str(port),
               "--workers", "1"]
    if uri.startswith("sqlite:///"):
        command += ["--default-artifact-root", artifact_root(uri)]
    return command


def serve_ui(uri: str, port: int | None, host: str = "127.0.0.1") -> None:
    """Start the MLflow UI and wait until Ctrl-C, SIGTERM or SIGHUP, which stop the server with all its processes."""
    check_store(uri)
    port, note = _pick_port(host, port)
    shown = f"[{host}]" if ":" in host else host
    print(f"MLflow UI for {uri}: http://{shown}:{port}  (Ctrl-C to stop){note}", flush=True)
    if host not in LOOPBACK:
        print(f"warning: the UI has no login; whoever can reach {host}:{port} can see, rename and delete the runs",
              file=sys.stderr, flush=True)
    # In a session of its own, the server and its workers can be stopped together. Signals sent to our terminal no
    # longer reach it then, so SIGTERM, and SIGHUP (the terminal closed) unless ignored (nohup), stop us as Ctrl-C does.
    stopping = [signal.SIGTERM] + ([signal.SIGHUP] if signal.getsignal(signal.SIGHUP) == signal.SIG_DFL else [])
    previous = {sig: signal.signal(sig, _interrupt) for sig in stopping}
    process = None
    try:
        process = subprocess.Popen(ui_command(uri, port, host), start_new_session=True)
        process.wait()
    except KeyboardInterrupt:
        pass
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        if process is not None:
            _stop(process)


def _pick_port(host: str, requested: int | None) -> tuple[int, str]:
    """The port to serve on, and a note for the user when it is not the one expected."""
    if requested is not None:
        if not port_is_free(host, requested):
            raise TaawunError(f"port {requested} on {host} is busy; choose another with --port")
        return requested, ""
    if port_is_free(host, DEFAULT_PORT):
        return DEFAULT_PORT, ""
    return free_port(host), f"  [port {DEFAULT_PORT} is busy]"


def _interrupt(signum, frame) -> None:
    raise KeyboardInterrupt


def _stop(process: subprocess.Popen) -> None:
    """Stop the server's process group: SIGTERM, then SIGKILL for whatever is left after 5 s."""
    for sig, grace in ((signal.SIGTERM, 5.0), (signal.SIGKILL, 5.0)):
        if not _group_alive(process):
            return
        with contextlib.suppress(ProcessLookupError):  # it may have ended just now
            os.killpg(process.pid, sig)
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline and _group_alive(process):
            time.sleep(0.1)


def _group_alive(process: subprocess.Popen) -> bool:
    """Whether any process of the server's group runs (its leader is reaped first, else it would count)."""
    process.poll()
    try:
        os.killpg(process.pid, 0)
    except ProcessLookupError:
        return False
    return True
