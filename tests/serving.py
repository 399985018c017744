"""Helpers the web-page tests share: a real uvicorn server on 127.0.0.1, and images as the page
sends them."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

from netscope.data import Dataset


@contextmanager
def local_server(app) -> Iterator[str]:
    """Yields the address of `app` served by uvicorn on 127.0.0.1 in a background thread."""
    import uvicorn

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started and time.monotonic() < deadline and thread.is_alive():
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}/"
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()


def page_image(mnist: Dataset, index: int) -> list:
    """Returns test image `index` as the page sends it: H×W nested lists of pixels in [0, 1]."""
    return (mnist.test_images[index, 0].float() / 255).tolist()
