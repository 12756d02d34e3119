"""A local HTTP server for tests and benchmarks: a handler class on a loopback port.

Used by the test OpenID provider, the paging webhook receivers and the paging
benchmark, so each states only what its endpoints answer.
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class QuietHandler(BaseHTTPRequestHandler):
    """A request handler that logs nothing and answers JSON with :meth:`send_json`."""

    def send_json(self, status: int, body: object) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: object) -> None:
        pass


class LocalServer:
    """``handler`` served on 127.0.0.1 (a free port) from a daemon thread until :meth:`close`.

    ``host_name`` is how clients address it in :attr:`url` (``localhost`` is
    another site than ``127.0.0.1`` for a browser's SameSite rules).
    """

    def __init__(self, handler: type[BaseHTTPRequestHandler], *,
                 host_name: str = "127.0.0.1") -> None:
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.url = f"http://{host_name}:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        """Stop serving and release the port."""
        self.server.shutdown()
        self.server.server_close()
