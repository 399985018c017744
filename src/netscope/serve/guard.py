"""Who may talk to the page, and how much they may send: two ASGI middlewares.

`LoopbackOnly`: a page on another site can reach 127.0.0.1 through DNS rebinding, but its requests
then carry its own host name, so the Host header must name this server (127.0.0.1 or localhost,
with the port). A cross-site form or fetch carries its own Origin, so requests that make the
server work (POST) must come from this page, or from no page at all (curl, scripts).

`BodyLimit`: a body is counted as it arrives, with or without Content-Length, and refused with 413
once it passes the limit, before the rest is read; then its JSON nesting depth is bounded, before
anything parses it.
"""

from __future__ import annotations

import re

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from netscope.serve.schema import problem

LOOPBACK_NAMES = ("127.0.0.1", "localhost")
READ_ONLY = ("GET", "HEAD", "OPTIONS")
JSON_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"')
NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")


def served_hosts(scope: Scope) -> set[str]:
    """Returns the Host header values that name this server: loopback names with its port."""
    port = (scope.get("server") or ("", None))[1]
    hosts = {f"{name}:{port}" for name in LOOPBACK_NAMES}
    return hosts | set(LOOPBACK_NAMES) if port == 80 else hosts  # browsers omit port 80


class LoopbackOnly:
    """Answers 400 to a Host other than this server and 403 to a POST from another site's page."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            headers, hosts = Headers(scope=scope), served_hosts(scope)
            host, origin = headers.get("host", ""), headers.get("origin")
            address = f"http://{sorted(hosts)[0]}/"
            if host.lower() not in hosts:
                refusal = problem(400, f"Host {host[:80]!r} is not this server: open {address}")
                return await refusal(scope, receive, send)
            if scope["method"] not in READ_ONLY and origin is not None:
                if origin.lower() not in {f"http://{name}" for name in hosts}:
                    message = f"Origin {origin[:80]!r}: only the page at {address} may ask"
                    return await problem(403, message)(scope, receive, send)
        await self.app(scope, receive, send)


def json_depth(body: bytes) -> int:
    """Returns how deeply [ and { nest in a JSON text (brackets inside strings do not count)."""
    depth = deepest = 0
    for bracket in JSON_STRING.sub(b"", body).translate(None, NOT_BRACKETS):
        depth += 1 if bracket in b"[{" else -1
        deepest = max(deepest, depth)
    return deepest


class BodyLimit:
    """Reads a request body up to `max_bytes` (413 beyond), refuses JSON nested deeper than
    `max_depth` (422), and hands the body on to the app."""

    def __init__(self, app: ASGIApp, max_bytes: int, max_depth: int) -> None:
        self.app, self.max_bytes, self.max_depth = app, max_bytes, max_depth

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in READ_ONLY:
            return await self.app(scope, receive, send)
        too_large = problem(  # and close the connection rather than read the rest
            413, f"request body too large (max {self.max_bytes} bytes)", {"Connection": "close"}
        )
        length = Headers(scope=scope).get("content-length", "0")
        if not length.isdigit() or int(length) > self.max_bytes:
            return await too_large(scope, receive, send)
        chunks, size = [], 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunks.append(message.get("body", b""))
            size += len(chunks[-1])
            if size > self.max_bytes:
                return await too_large(scope, receive, send)
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        if json_depth(body) > self.max_depth:
            message = f"body: JSON nested deeper than {self.max_depth} levels"
            return await problem(422, message)(scope, receive, send)
        await self.app(scope, replay(body, receive), send)


def replay(body: bytes, receive: Receive) -> Receive:
    """Returns a `receive` that gives the app `body` in one message, then waits as before."""
    sent = False

    async def receive_again() -> Message:
        nonlocal sent
        if sent:
            return await receive()
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return receive_again
