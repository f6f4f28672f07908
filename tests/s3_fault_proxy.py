"""A small HTTP proxy in front of the S3 server that answers 503 to chosen requests, holds others
past the client's timeout, or goes away (its established keep-alive connections cut too) and comes
back on the same port: a real network hop for fault tests (the S3 server itself stays unmodified)."""

import http.client
import socket
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlparse


class _QuietServer(ThreadingHTTPServer):
    def handle_error(self, request, client_address):
        """A client that gave up (timeout) or a connection cut on purpose is the point, not news."""
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


class FaultProxy:
    """`fail_next(n, method, path_part)`: the next n matching requests get a 503 InternalError;
    `delay_next(n, method, path_part, seconds)`: they are answered only after `seconds`;
    `stop()` / `start()`: the server is gone (new connections refused, established ones cut: a
    client's pooled connection must not outlive the server) / back on the same port.
    Path parts to aim at: "/data/" (data files), "/locks/" (lock heartbeats), "list-type=2" (LIST).
    Everything else is forwarded unchanged; `failed`, `delayed`, `cut` count what was done."""

    def __init__(self, upstream: str):
        target = urlparse(upstream)
        self._upstream = (target.hostname, target.port)
        self._lock = threading.Lock()
        self._faults: list[list] = []  # [remaining, method, path_part, delay or None]
        self.failed = self.delayed = self.cut = self.outages = 0
        self._connections: set[socket.socket] = set()
        self.port = 0
        self.start()
        self.endpoint = f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        self.server = _QuietServer(("127.0.0.1", self.port), self._handler())
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        with self._lock:
            established, self._connections = list(self._connections), set()
        for connection in established:
            try:
                connection.shutdown(socket.SHUT_RDWR)
                self.cut += 1
            except OSError:
                pass  # the client had closed it already

    def fail_next(self, count: int, method: str, path_part: str) -> None:
        with self._lock:
            self._faults.append([count, method, path_part, None])

    def delay_next(self, count: int, method: str, path_part: str, seconds: float) -> None:
        with self._lock:
            self._faults.append([count, method, path_part, seconds])

    def gone_at(self, method: str, path_part: str, seconds: float) -> None:
        """When the next matching request arrives, the server goes away (that request unanswered,
        every established connection cut, new ones refused) and is back `seconds` later."""
        with self._lock:
            self._faults.append([1, method, path_part, "gone", seconds])

    def pending(self) -> int:
        """Injected faults not yet met (0: every one happened)."""
        with self._lock:
            return sum(fault[0] for fault in self._faults)

    def _outage(self, seconds: float) -> None:
        self.stop()
        self.outages += 1
        time.sleep(seconds)
        self.start()

    def _fault(self, method: str, path: str) -> list | None:
        with self._lock:
            for fault in self._faults:
                if fault[0] > 0 and fault[1] == method and fault[2] in path:
                    fault[0] -= 1
                    return fault
        return None

    def heal(self) -> None:
        """No more faults."""
        with self._lock:
            self._faults.clear()

    close = stop

    def _handler(self):
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def setup(self):
                super().setup()
                with proxy._lock:
                    proxy._connections.add(self.connection)

            def finish(self):
                with proxy._lock:
                    proxy._connections.discard(self.connection)
                super().finish()

            def _forward(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                fault = proxy._fault(self.command, self.path)
                if fault and fault[3] == "gone":
                    threading.Thread(target=proxy._outage, args=(fault[4],), daemon=True).start()
                    self.close_connection = True
                    time.sleep(fault[4] + 1)  # unanswered; its connection is cut with the others
                    return
                if fault and fault[3] is not None:
                    proxy.delayed += 1
                    time.sleep(fault[3])  # the client has given up on this one by now
                elif fault:
                    proxy.failed += 1
                    payload = b"<Error><Code>InternalError</Code><Message>injected</Message></Error>"
                    self.send_response(503)
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                    return
                upstream = http.client.HTTPConnection(*proxy._upstream, timeout=30)
                headers = {k: v for k, v in self.headers.items() if k.lower() != "connection"}
                upstream.request(self.command, self.path, body=body, headers=headers)
                response = upstream.getresponse()
                data = response.read()
                self.send_response(response.status)
                for name, value in response.getheaders():
                    if name.lower() not in ("transfer-encoding", "connection", "content-length"):
                        self.send_header(name, value)
                # A HEAD answer has no body but tells the object's length: pass that through.
                length = response.getheader("Content-Length") if self.command == "HEAD" else len(data)
                self.send_header("Content-Length", str(length or 0))
                self.end_headers()
                self.wfile.write(data)
                upstream.close()

            do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = _forward

        return Handler
