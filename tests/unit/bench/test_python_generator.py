"""The Python load generator: runs of a stateful operation continue without re-sending a line.

Connection i of a run sends lines offset+i, offset+i+concurrency, …; connections do not all send
as many requests, so the next run must start after the furthest line any of them reached (a
continuation at offset + total sent re-sent 50 create requests in one benchmark: 409 Conflict).
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler
from http.server import ThreadingHTTPServer

from bench.load import Req
from bench.load import _run_python
from bench.load import write_requests


class _Recorder(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    seen: Counter[str] = Counter()
    lock = threading.Lock()

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        with self.lock:
            self.seen[self.path] += 1
        # Every answer takes a while (so three runs stay within the file), and some take longer, so
        # the connections fall out of step.
        time.sleep(0.004 if self.path.endswith("3") else 0.001)
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


def test_consecutive_runs_never_send_a_line_twice(tmp_path):
    _Recorder.seen = Counter()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Recorder)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}"
        lines = write_requests(tmp_path / "reqs", [Req("GET", f"/line/{n}") for n in range(20_000)])
        offset = 0
        for _ in range(3):
            result = _run_python(url, lines, duration=1.0, concurrency=4, offset=offset, headers={}, timeout_s=5)
            # Lines were sent (on a loaded machine none may have been answered within the second).
            assert result.used > 0
            offset += result.used
        # Requests written just before a run's deadline may still be waiting in the server's accept
        # queue on a loaded machine: let it read them (bounded) before looking at what it saw.
        deadline = time.monotonic() + 10
        while sum(_Recorder.seen.values()) < 3 and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        server.shutdown()
    repeated = {path: n for path, n in _Recorder.seen.items() if n > 1}
    assert repeated == {}
    assert sum(_Recorder.seen.values()) >= 3
