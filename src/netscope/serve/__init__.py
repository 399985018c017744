"""A local web page to poke a trained network: `netscope serve RUN [--port 8000]`.

Draw a digit (or pick a test image) and see the class probabilities, every layer's feature
maps, the saliency or occlusion map and an adversarial twin, for any checkpoint of the run. The
server listens on 127.0.0.1 only, so nothing is reachable from other computers.
"""

from __future__ import annotations

import ctypes
import sys
from dataclasses import dataclass
from pathlib import Path

from netscope.errors import NetscopeError

HOST = "127.0.0.1"  # never 0.0.0.0: the page runs models on request and has no authentication


@dataclass
class ServeConfig:
    """How to serve; each field is a `netscope serve --flag` of the same name."""

    port: int = 8000

    def __post_init__(self) -> None:
        if not 1 <= self.port <= 65535:
            raise NetscopeError(f"--port {self.port}: expected a port number 1 .. 65535")


def cap_malloc_arenas(arenas: int = 2) -> None:
    """Caps glibc's malloc arenas for this process (elsewhere does nothing). By default each
    worker thread may get its own, and the server's memory creeps up burst after burst
    (+220 MB over 40 bursts; level with the cap: "The web page under load", bench/RESULTS.md)."""
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return
    libc.mallopt(-8, arenas)  # -8: M_ARENA_MAX


def serve(run_dir: str | Path, config: ServeConfig | None = None) -> None:
    """Serves the page for the run in `run_dir` on 127.0.0.1 until interrupted."""
    import uvicorn

    from netscope.serve.app import create_app

    config = config or ServeConfig()
    cap_malloc_arenas()  # before any worker thread starts
    app = create_app(run_dir)
    print(
        f"netscope: serving {Path(run_dir).resolve()} at http://{HOST}:{config.port}/ "
        f"(bound to {HOST} only: reachable from this computer alone; Ctrl+C stops)",
        file=sys.stderr,
        flush=True,
    )
    try:
        uvicorn.run(app, host=HOST, port=config.port, log_level="warning")
    except SystemExit:  # uvicorn exits when the port is taken; say which flag fixes it
        raise NetscopeError(
            f"--port {config.port}: could not listen on {HOST}:{config.port} (in use? try another)"
        ) from None


__all__ = ["HOST", "ServeConfig", "serve"]
