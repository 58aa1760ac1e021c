"""Two gateways that misbehave the way real deployments do, for tests/test_bad_input.py.

    python tests/gateways/misbehaving.py hung PORT   answers GET /health, then never answers
                                                     anything else (a wedged worker pool)
    python tests/gateways/misbehaving.py html PORT   answers HTML 200 to everything (a login
                                                     page or a catch-all proxy in front of it)

Built on the standard library's threading HTTP server: a fixture, not part of gwconf.
"""

from __future__ import annotations

import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

HTML = b"<!doctype html><html><body><h1>Welcome</h1><p>Please sign in.</p></body></html>"
NEVER = threading.Event()  # never set: a request waits on it for ever


class Hung(BaseHTTPRequestHandler):
    def handle_one_request(self) -> None:
        self.raw_requestline = self.rfile.readline(65537)
        if not self.raw_requestline or not self.parse_request():
            self.close_connection = True
            return
        if self.path == "/health":
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", "15")
            self.end_headers()
            self.wfile.write(b'{"status":"ok"}')
            return
        NEVER.wait()

    def log_message(self, *args: object) -> None:
        pass


class Html(BaseHTTPRequestHandler):
    def answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(HTML)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(HTML)

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = answer

    def log_message(self, *args: object) -> None:
        pass


def main() -> None:
    kind, port = sys.argv[1], int(sys.argv[2])
    server = ThreadingHTTPServer(("127.0.0.1", port), Hung if kind == "hung" else Html)
    server.daemon_threads = True
    server.serve_forever()


if __name__ == "__main__":
    main()
