"""Bounded admission: at most `limit` requests inside the app at once; the rest come back later.

The models answer one request at a time (app.Lab.evaluating), so a request beyond what they can
answer soon would only wait and hold memory. It gets 429 Too Many Requests with Retry-After at
once, before its body is read, and the server's memory stays bounded under any burst.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Receive, Scope, Send

from netscope.serve.schema import problem


class Admission:
    """ASGI middleware that lets `limit` HTTP requests in at once and answers the rest with 429."""

    def __init__(self, app: ASGIApp, limit: int, retry_after_s: int = 1) -> None:
        self.app, self.limit, self.retry_after_s = app, limit, retry_after_s
        self.active = 0  # changed only on the event loop's thread: no lock needed

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        if self.active >= self.limit:
            busy = problem(
                429,
                f"busy: {self.limit} requests are being answered; retry in {self.retry_after_s} s",
                headers={"Retry-After": str(self.retry_after_s)},
            )
            return await busy(scope, receive, send)
        self.active += 1
        try:
            await self.app(scope, receive, send)
        finally:
            self.active -= 1
