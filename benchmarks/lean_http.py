"""A lean HTTP/1.1 load generator for the serve benchmarks: keep-alive clients and a User endpoint.

The benchmark's clients share the 2 cores with ``serve``; every millisecond they spend is one the
server cannot. aiohttp's client and server cost about 0.5 ms of CPU per Service Request here
(request and response objects, header multidicts, tracing hooks, the connection pool); these cost a
fraction of that, because they do only what the benchmark needs: one persistent connection per
client, one request at a time on it, status line, ``Content-Length`` body, and the two headers the
benchmark reads (``Retry-After``, ``X-DCC-Message-ID``). They are not a general HTTP
implementation: no chunked bodies, no redirects, no TLS. ``serve`` itself is unchanged (aiohttp).
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass


class HttpError(Exception):
    """The peer closed the connection or sent something this reader does not take."""


@dataclass(slots=True)
class Reply:
    status: int
    headers: dict[bytes, bytes]  # lower-case names
    body: bytes


def _take_head(buffer: bytearray) -> tuple[bytes, dict[bytes, bytes], int] | None:
    """The first line, headers (lower-case names) and ``Content-Length`` of the HTTP head at the
    start of ``buffer``, taken out of it; None until the whole head has arrived."""
    end = buffer.find(b"\r\n\r\n")
    if end < 0:
        return None
    lines = bytes(buffer[:end]).split(b"\r\n")
    del buffer[:end + 4]
    headers: dict[bytes, bytes] = {}
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        headers[name.strip().lower()] = value.strip()
    try:
        length = int(headers.get(b"content-length", b"0"))
    except ValueError:
        raise HttpError(f"bad Content-Length after {lines[0]!r}") from None
    return lines[0], headers, length


class _Connection(asyncio.Protocol):
    """One keep-alive connection; one request at a time."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self._buffer = bytearray()
        self._waiter: asyncio.Future[Reply] | None = None
        self._head: tuple[int, dict[bytes, bytes], int] | None = None  # status, headers, body length
        self.closed = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_exception(HttpError(f"connection closed: {exc}"))

    def data_received(self, data: bytes) -> None:
        self._buffer += data
        self._parse()

    def _parse(self) -> None:
        if self._head is None:
            try:
                head = _take_head(self._buffer)
                if head is None:
                    return
                first, headers, length = head
                status = int(first.split(b" ", 2)[1])
            except (HttpError, IndexError, ValueError) as exc:
                self._fail(exc if isinstance(exc, HttpError) else HttpError(f"bad response head: {exc}"))
                return
            self._head = (status, headers, length)
        status, headers, length = self._head
        if len(self._buffer) < length:
            return
        body = bytes(self._buffer[:length])
        del self._buffer[:length]
        self._head = None
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(Reply(status, headers, body))

    def _fail(self, error: Exception) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_exception(error)
        if self.transport is not None:
            self.transport.close()

    def request(self, data: bytes) -> "asyncio.Future[Reply]":
        assert self.transport is not None
        self._waiter = asyncio.get_running_loop().create_future()
        self.transport.write(data)
        return self._waiter


class LeanClient:
    """One client of the benchmark: a persistent connection to ``host:port``, re-opened if lost."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self._conn: _Connection | None = None

    async def post(self, path: str, body: bytes, timeout: float) -> Reply:
        if self._conn is None or self._conn.closed:
            loop = asyncio.get_running_loop()
            _transport, self._conn = await loop.create_connection(_Connection, self.host, self.port)
        head = (f"POST {path} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\nContent-Type: application/xml\r\n"
                f"Content-Length: {len(body)}\r\n\r\n").encode()
        conn = self._conn
        try:
            return await asyncio.wait_for(conn.request(head + body), timeout)
        except BaseException:
            if conn.transport is not None:
                conn.transport.close()  # a late answer must not be read as the next one's
            self._conn = None
            raise

    def close(self) -> None:
        if self._conn is not None and self._conn.transport is not None:
            self._conn.transport.close()


class _Endpoint(asyncio.Protocol):
    """The server side of one connection to :class:`LeanReceiver`."""

    def __init__(self, on_message: Callable[[bytes], None]) -> None:
        self._on_message = on_message
        self._buffer = bytearray()
        self._head: tuple[dict[bytes, bytes], int] | None = None
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self._buffer += data
        while True:
            if self._head is None:
                try:
                    head = _take_head(self._buffer)
                except HttpError:
                    assert self.transport is not None
                    self.transport.close()
                    return
                if head is None:
                    return
                _first, headers, length = head
                self._head = (headers, length)
            headers, length = self._head
            if len(self._buffer) < length:
                return
            del self._buffer[:length]
            self._head = None
            self._on_message(headers.get(b"x-dcc-message-id", b"?"))
            assert self.transport is not None
            self.transport.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n\r\nok")


class LeanReceiver:
    """The DCC User's endpoint: counts each ``X-DCC-Message-ID`` it is given, answers 200."""

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()
        self._server: asyncio.Server | None = None

    def _count(self, message_id: bytes) -> None:
        self.counts[message_id.decode(errors="replace")] += 1

    async def start(self, host: str = "127.0.0.1") -> int:
        """Listen on a free port of ``host``; returns the port."""
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(lambda: _Endpoint(self._count), host, 0)
        return int(self._server.sockets[0].getsockname()[1])

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
