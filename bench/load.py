"""Load generators: ``wrk`` replaying a request file (preferred), or keep-alive Python processes.

A request file has one request per line: ``METHOD \\t PATH \\t HEADERS \\t BODY``, headers as
``Name: value`` joined by ``\\x1f``. Both generators replay it in order from an offset, so the
ceiling and the service get exactly the same requests, and stateful operations (create, add a
member) can continue where the previous round stopped instead of repeating themselves.
"""

from __future__ import annotations

import http.client
import json
import multiprocessing
import os
import shutil
import subprocess
import time
from collections import Counter
from dataclasses import dataclass
from dataclasses import field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
HEADER_SEP = "\x1f"


@dataclass(frozen=True, slots=True)
class Req:
    """One request of a request file."""

    method: str
    path: str
    body: str | None = None
    headers: tuple[tuple[str, str], ...] = ()

    def line(self) -> str:
        """Return the request as one request-file line."""
        hdrs = HEADER_SEP.join(f"{k}: {v}" for k, v in self.headers)
        body = self.body or ""
        if any(c in body for c in "\t\n\r") or any(c in self.path for c in "\t\n\r "):
            raise ValueError(f"request cannot be written on one line: {self.method} {self.path}")
        return f"{self.method}\t{self.path}\t{hdrs}\t{body}"


def write_requests(path: Path, requests: list[Req]) -> Path:
    """Write *requests* as a request file and return its path."""
    if not requests:
        raise ValueError("an operation needs at least one request")
    with path.open("w") as fh:
        for request in requests:
            fh.write(request.line() + "\n")
    return path


def parse_line(line: str) -> Req:
    """Parse one request-file line."""
    method, path, hdrs, body = line.rstrip("\n").split("\t", 3)
    headers = tuple(tuple(h.split(": ", 1)) for h in hdrs.split(HEADER_SEP) if h)
    return Req(method, path, body or None, headers)  # type: ignore[arg-type]


@dataclass
class Result:
    """What one load run measured."""

    requests: int
    seconds: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    non2xx: int
    codes: dict[str, int]
    used: int
    errors: dict[str, int] = field(default_factory=dict)

    @property
    def rps(self) -> float:
        """Return completed requests per second (all statuses)."""
        return self.requests / self.seconds if self.seconds > 0 else 0.0

    def to_dict(self) -> dict[str, Any]:
        """Return the result as plain JSON values."""
        return {"requests": self.requests, "seconds": round(self.seconds, 3), "rps": round(self.rps, 1),
                "p50_ms": self.p50_ms, "p90_ms": self.p90_ms, "p99_ms": self.p99_ms, "max_ms": self.max_ms,
                "non2xx": self.non2xx, "codes": self.codes, "lines_used": self.used, "socket_errors": self.errors}


def wrk_available() -> str | None:
    """Return the path of ``wrk``, if installed."""
    return shutil.which("wrk")


def run(generator: str, url: str, request_file: Path, *, duration: float, concurrency: int, offset: int,
        headers: dict[str, str], timeout_s: int) -> Result:
    """Replay *request_file* against *url* for *duration* seconds with *concurrency* connections."""
    if generator == "wrk":
        return _run_wrk(url, request_file, duration=duration, concurrency=concurrency, offset=offset,
                        headers=headers, timeout_s=timeout_s)
    return _run_python(url, request_file, duration=duration, concurrency=concurrency, offset=offset,
                       headers=headers, timeout_s=timeout_s)


def _run_wrk(url: str, request_file: Path, *, duration: float, concurrency: int, offset: int,
             headers: dict[str, str], timeout_s: int) -> Result:
    # One wrk thread is plenty (it does tens of thousands of requests/s) and leaves the second
    # core of a small machine to gunicorn.
    threads = 1
    cmd = ["wrk", "-t", str(threads), "-c", str(concurrency), "-d", f"{int(round(duration))}s",
           "--timeout", f"{timeout_s}s", "-s", str(HERE / "replay.lua")]
    for key, value in headers.items():
        cmd += ["-H", f"{key}: {value}"]
    cmd += [url, "--", str(request_file), str(offset), str(threads)]
    # Bounded: wrk stops itself after -d; the extra time covers loading the file and a slow tail.
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=duration + timeout_s + 120)
    for line in proc.stdout.splitlines():
        if line.startswith("WRKJSON "):
            data = json.loads(line[len("WRKJSON "):])
            break
    else:
        raise RuntimeError(f"wrk failed ({proc.returncode}): {proc.stderr.strip() or proc.stdout.strip()}")
    return Result(
        requests=data["requests"], seconds=data["duration_us"] / 1e6,
        p50_ms=data["p50_us"] / 1000, p90_ms=data["p90_us"] / 1000, p99_ms=data["p99_us"] / 1000,
        max_ms=data["max_us"] / 1000, non2xx=data["non2xx"], codes=data["codes"], used=data["sent"],
        errors={k: data[k] for k in ("connect_errors", "read_errors", "write_errors", "timeouts") if data[k]},
    )


# -- the Python fallback ---------------------------------------------------------------------------

def _python_worker(host: str, port: int, parsed: list[Any], start: int, step: int, deadline: float,
                   headers: dict[str, str], timeout_s: int, out: Any) -> None:
    """Send requests on one keep-alive connection until *deadline*; put (latencies, codes, errors, sent, next line).

    The next line is the one after the furthest this connection sent (0 when it sent none).
    """
    conn = http.client.HTTPConnection(host, port, timeout=timeout_s)
    latencies: list[float] = []
    codes: Counter[str] = Counter()
    errors = 0
    index, sent = start, 0
    while time.monotonic() < deadline:
        req = parsed[index % len(parsed)]
        index += step
        sent += 1
        hdrs = {**headers, **dict(req.headers)}
        body = req.body.encode() if req.body is not None else None
        started = time.perf_counter()
        try:
            conn.request(req.method, req.path, body=body, headers=hdrs)
            response = conn.getresponse()
            response.read()
        except (http.client.HTTPException, OSError):
            errors += 1
            conn.close()
            conn = http.client.HTTPConnection(host, port, timeout=timeout_s)
            continue
        latencies.append(time.perf_counter() - started)
        codes[str(response.status)] += 1
    conn.close()
    out.put((latencies, dict(codes), errors, sent, index - step + 1 if sent else 0))


def _run_python(url: str, request_file: Path, *, duration: float, concurrency: int, offset: int,
                headers: dict[str, str], timeout_s: int) -> Result:
    host, port = url.removeprefix("http://").split(":")
    # Parsed once, before the fork (the children share it): parsing 20,000 lines in each child
    # took longer than the run's start-up allowance on a loaded machine, and a child that starts
    # after the deadline sends nothing.
    parsed = [parse_line(line) for line in request_file.read_text().splitlines()]
    ctx = multiprocessing.get_context("fork")
    queue = ctx.Queue()
    started = time.monotonic() + 0.5  # all processes forked before the clock starts
    deadline = started + duration
    procs = [ctx.Process(target=_python_worker,
                         args=(host, int(port), parsed, offset + i, concurrency, deadline, headers, timeout_s, queue),
                         daemon=True) for i in range(concurrency)]
    for proc in procs:
        proc.start()
    latencies: list[float] = []
    codes: Counter[str] = Counter()
    errors = sent = 0
    # Connection i sends lines offset+i, offset+i+concurrency, ...: the next run must start after the
    # furthest line any connection reached, not after the total sent (a fast connection runs ahead).
    next_line = offset
    for _ in procs:
        lat, cds, errs, snt, reached = queue.get(timeout=duration + timeout_s + 60)
        latencies += lat
        codes.update(cds)
        errors += errs
        sent += snt
        next_line = max(next_line, reached)
    elapsed = max(time.monotonic() - started, 1e-9)
    for proc in procs:
        proc.join(timeout=10)
        if proc.is_alive():
            proc.kill()
    latencies.sort()

    def pct(p: float) -> float:
        return round(latencies[min(len(latencies) - 1, int(p / 100 * len(latencies)))] * 1000, 2) if latencies else 0.0

    non2xx = sum(v for k, v in codes.items() if not k.startswith("2"))
    return Result(requests=len(latencies), seconds=min(elapsed, duration + timeout_s), p50_ms=pct(50),
                  p90_ms=pct(90), p99_ms=pct(99), max_ms=pct(100), non2xx=non2xx, codes=dict(codes),
                  used=next_line - offset,
                  errors={"socket_errors": errors} if errors else {})


def cpu_count() -> int:
    """Return the usable CPUs."""
    return len(os.sched_getaffinity(0))
