"""A request body over a size limit gets 413 before the app parses it: a plain ASGI middleware.

Starlette's ``@app.middleware("http")`` (``BaseHTTPMiddleware``) runs every request through an anyio task
group and memory streams; under 16 concurrent clients that wrapper took about a third of the event loop's
time in ``dynmask serve`` (py-spy), so the limit is checked here, on the raw ASGI messages, instead."""

from __future__ import annotations

from typing import Any, Awaitable, Callable

__all__ = ["BodyLimit"]

Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]


class BodyLimit:
    """Wraps an ASGI ``app``: an HTTP request whose ``Content-Length`` is over ``max_body`` bytes (or not a
    number) is answered 413 at once; a body sent without a length (chunked) is read here up to the limit,
    413 past it, and otherwise handed to ``app`` whole."""

    def __init__(self, app: Callable, max_body: int) -> None:
        self.app, self.max_body = app, max_body

    async def __call__(self, scope: dict, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        length = next((value for name, value in scope["headers"] if name == b"content-length"), None)
        if length is not None:
            if not length.isdigit() or int(length) > self.max_body:
                return await self._too_large(scope, receive, send)
            return await self.app(scope, receive, send)
        if scope["method"] != "POST":
            return await self.app(scope, receive, send)
        body, more = bytearray(), True  # chunked: count what arrives
        while more:
            message = await receive()
            if message["type"] != "http.request":  # the client went away
                return
            body += message.get("body", b"")
            more = message.get("more_body", False)
            if len(body) > self.max_body:
                return await self._too_large(scope, receive, send)
        whole = {"type": "http.request", "body": bytes(body), "more_body": False}
        sent = False

        async def replay() -> Message:  # the body once, then what the server says next (a disconnect)
            nonlocal sent
            if sent:
                return await receive()
            sent = True
            return whole

        await self.app(scope, replay, send)

    async def _too_large(self, scope: dict, receive: Receive, send: Send) -> None:
        from starlette.responses import JSONResponse

        response = JSONResponse({"detail": f"the body is over {self.max_body} bytes"}, status_code=413)
        await response(scope, receive, send)
