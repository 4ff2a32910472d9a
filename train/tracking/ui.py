"""`taawun ui`: the MLflow UI on the project's tracking store, served on 127.0.0.1."""

from __future__ import annotations

import socket
import subprocess
import sys

from train.tracking.store import artifact_root, check_store


def free_port() -> int:
    """A free TCP port on 127.0.0.1."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def ui_command(uri: str, port: int) -> list[str]:
    """The command that serves the MLflow UI for the project's store on 127.0.0.1."""
    command = [sys.executable, "-m", "mlflow", "ui", "--backend-store-uri", uri, "--host", "127.0.0.1",
               "--port", str(port)]
    if uri.startswith("sqlite:///"):
        command += ["--default-artifact-root", artifact_root(uri)]
    return command


def serve_ui(uri: str, port: int | None) -> None:
    """Start the MLflow UI and wait until interrupted."""
    check_store(uri)
    port = port or free_port()
    print(f"MLflow UI for {uri}: http://127.0.0.1:{port}  (Ctrl-C to stop)", flush=True)
    process = subprocess.Popen(ui_command(uri, port))
    try:
        process.wait()
    except KeyboardInterrupt:
        process.terminate()
        process.wait(timeout=10)
