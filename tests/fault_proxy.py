"""An HTTP proxy in front of an AWS endpoint (moto_server) that injects the faults a network and AWS produce.

The code under test talks to the proxy as to AWS (``AWS_ENDPOINT_URL``); botocore's own retries then meet the
faults exactly as they would in production. For every request, ``decide(request)`` picks an action:

- ``FORWARD``: pass the request on and its answer back;
- ``LOSE_ANSWER``: pass the request on (it takes effect) and close the connection instead of answering: a
  lost acknowledgement, as when a connection is reset after the write or a function times out reading the
  answer. botocore sees a closed connection and retries the request;
- ``RESET``: close the connection without passing the request on (it never took effect);
- an ``ErrorAnswer``: answer with that AWS error without passing the request on (throttling, a 500).
"""

from __future__ import annotations

import http.client
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

_HOP_BY_HOP = {"connection", "keep-alive", "proxy-connection", "transfer-encoding", "te", "trailer", "upgrade"}


@dataclass(frozen=True)
class Request:
    method: str
    path: str  # with the query string
    headers: dict[str, str]  # lower-case names
    body: bytes

    @property
    def target(self) -> str:
        """The JSON-protocol operation (``AWSGlue.CreatePartition``), or '' for REST calls (S3)."""
        return self.headers.get("x-amz-target", "")

    @property
    def conditional(self) -> bool:
        return "if-match" in self.headers or "if-none-match" in self.headers


@dataclass(frozen=True)
class ErrorAnswer:
    status: int
    code: str
    json_protocol: bool = False  # Glue, SQS (JSON) vs S3 (XML)

    def body(self) -> tuple[bytes, str]:
        if self.json_protocol:
            return f'{{"__type": "{self.code}", "message": "injected"}}'.encode(), "application/x-amz-json-1.1"
        xml = f"<?xml version='1.0' encoding='UTF-8'?><Error><Code>{self.code}</Code><Message>injected</Message>"
        return f"{xml}</Error>".encode(), "application/xml"


FORWARD = "forward"
LOSE_ANSWER = "lose-answer"
RESET = "reset"
Action = str | ErrorAnswer


@dataclass
class FaultProxy:
    upstream: str
    decide: Callable[[Request], Action] = lambda request: FORWARD
    injected: Counter[str] = field(default_factory=Counter)  # by action name
    url: str = ""
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def count(self, action: Action) -> None:
        with self._lock:
            self.injected[action.code if isinstance(action, ErrorAnswer) else action] += 1


def _handler(proxy: FaultProxy) -> type[BaseHTTPRequestHandler]:
    upstream = urlsplit(proxy.upstream)

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True  # headers and body go out in two writes: no 40 ms delayed-ACK stall

        def log_message(self, format: str, *args: object) -> None:
            pass

        def _read_body(self) -> bytes:
            if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                chunks: list[bytes] = []
                while True:
                    size = int(self.rfile.readline().split(b";")[0].strip(), 16)
                    if size == 0:
                        while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                            pass
                        return b"".join(chunks)
                    chunks.append(self.rfile.read(size))
                    self.rfile.readline()
            return self.rfile.read(int(self.headers.get("Content-Length") or 0))

        def _handle(self) -> None:
            body = self._read_body()
            headers = {k.lower(): v for k, v in self.headers.items()}
            request = Request(self.command, self.path, headers, body)
            action = proxy.decide(request)
            if action != FORWARD:
                proxy.count(action)
            if action == RESET:
                self.close_connection = True
                return
            if isinstance(action, ErrorAnswer):
                payload, content_type = action.body()
                self.send_response(action.status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)
                return
            status, reason, answer_headers, answer = self._forward(request)
            if action == LOSE_ANSWER:
                self.close_connection = True
                return
            self.send_response(status, reason)
            head = self.command == "HEAD"  # its Content-Length is the object's, with no body
            for name, value in answer_headers:
                if name.lower() not in _HOP_BY_HOP and (head or name.lower() != "content-length"):
                    self.send_header(name, value)
            if not head:
                self.send_header("Content-Length", str(len(answer)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(answer)

        def _forward(self, request: Request) -> tuple[int, str, list[tuple[str, str]], bytes]:
            connection = http.client.HTTPConnection(upstream.hostname or "127.0.0.1", upstream.port, timeout=60)
            try:
                headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP_BY_HOP | {"expect"}}
                headers["Content-Length"] = str(len(request.body))
                connection.request(request.method, request.path, body=request.body, headers=headers)
                response = connection.getresponse()
                return response.status, response.reason, response.getheaders(), response.read()
            finally:
                connection.close()

        do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = _handle  # noqa: N815 (http.server's names)

    return Handler


@contextmanager
def fault_proxy(upstream: str, decide: Callable[[Request], Action] = lambda request: FORWARD) -> Iterator[FaultProxy]:
    """A ``FaultProxy`` listening on 127.0.0.1 (ephemeral port) for the duration of the block."""
    proxy = FaultProxy(upstream, decide)
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(proxy))
    server.daemon_threads = True
    server.handle_error = lambda request, client_address: None  # type: ignore[method-assign]  # a client gone
    proxy.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield proxy
    finally:
        server.shutdown()
        server.server_close()
