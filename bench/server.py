"""gunicorn processes for the benchmark: start, wait until ready, watch worker memory, always stop."""

from __future__ import annotations

import atexit
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from dataclasses import field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
HOST = "127.0.0.1"  # the benchmark never talks to anything but the loopback interface
_RUNNING: list[subprocess.Popen[bytes]] = []


def free_port() -> int:
    """Return a free TCP port on 127.0.0.1."""
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def _stop_all() -> None:
    for process in list(_RUNNING):
        stop(process)


atexit.register(_stop_all)


def _on_signal(signum: int, _frame: object) -> None:
    _stop_all()
    raise SystemExit(128 + signum)


def install_signal_handlers() -> None:
    """Stop every gunicorn we started on Ctrl-C or SIGTERM too."""
    signal.signal(signal.SIGINT, _on_signal)
    signal.signal(signal.SIGTERM, _on_signal)


def stop(process: subprocess.Popen[bytes], timeout: float = 30) -> None:
    """Terminate a gunicorn master (graceful, then kill) and forget it."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
    if process in _RUNNING:
        _RUNNING.remove(process)


@dataclass
class Server:
    """One gunicorn master serving *app* on 127.0.0.1:*port*."""

    name: str
    app: str
    config: str
    port: int
    env: dict[str, str]
    log_path: Path
    process: subprocess.Popen[bytes] | None = None
    memory: MemoryWatch | None = None

    @property
    def url(self) -> str:
        """Return the base URL."""
        return f"http://{HOST}:{self.port}"

    def start(self, ready_path: str, timeout: float = 60) -> None:
        """Start gunicorn and wait until *ready_path* answers 200."""
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "-c", self.config, "--bind", f"{HOST}:{self.port}", self.app],
            cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT,
        )
        log.close()
        _RUNNING.append(self.process)
        deadline = time.monotonic() + timeout
        while True:
            try:
                with urllib.request.urlopen(self.url + ready_path, timeout=2) as response:
                    if response.status == 200:
                        break
            except (OSError, urllib.error.HTTPError):
                pass
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"{self.name}: gunicorn did not become ready; see {self.log_path}")
            time.sleep(0.2)
        # All workers are forked by the time the first one answers, but give stragglers a moment.
        time.sleep(0.5)
        self.memory = MemoryWatch(self.process.pid)
        self.memory.start()

    def stop(self) -> None:
        """Stop gunicorn and the memory watch."""
        if self.memory is not None:
            self.memory.stop()
        if self.process is not None:
            stop(self.process)

    def wait_idle(self, timeout: float = 120) -> float:
        """Wait until no connection to the port is open (requests still running after a load run
        ended would slow the next run down); return the seconds waited (bounded by *timeout*)."""
        started = time.monotonic()
        while open_connections(self.port) and time.monotonic() - started < timeout:
            time.sleep(0.1)
        return round(time.monotonic() - started, 2)

    def workers(self) -> list[int]:
        """Return the pids of the current workers."""
        return children(self.process.pid) if self.process is not None else []


# /proc/net/tcp states of a connection still in use: ESTABLISHED, CLOSE_WAIT.
_BUSY_STATES = {"01", "08"}


def open_connections(port: int) -> int:
    """Count connections to local *port* that are established or not yet closed by the server."""
    count = 0
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(table) as fh:
                next(fh, None)
                for line in fh:
                    fields = line.split()
                    if int(fields[1].rsplit(":", 1)[1], 16) == port and fields[3] in _BUSY_STATES:
                        count += 1
        except OSError:
            continue
    return count


def children(pid: int) -> list[int]:
    """Return the pids of *pid*'s direct children (gunicorn workers of a master)."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as fh:
                stat = fh.read()
        except OSError:
            continue
        # The command name may contain spaces; the ppid is the 2nd field after the closing ')'.
        if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
            found.append(int(entry))
    return sorted(found)


def proc_status_kb(pid: int, key: str) -> int | None:
    """Return a ``/proc/<pid>/status`` value in kB (``VmRSS``, ``VmHWM``), or ``None`` if gone."""
    try:
        with open(f"/proc/{pid}/status") as fh:
            for line in fh:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def rss_by_worker(master: int) -> dict[int, int]:
    """Return the current RSS (kB) of each worker of *master*."""
    out = {}
    for pid in children(master):
        value = proc_status_kb(pid, "VmRSS")
        if value is not None:
            out[pid] = value
    return out


@dataclass
class MemoryWatch:
    """Sample the workers' ``VmHWM`` twice a second: workers are recycled (``max_requests``), so a
    reading at the end alone would miss the peaks of the workers that already exited."""

    master: int
    interval: float = 0.5
    peak_kb_by_pid: dict[int, int] = field(default_factory=dict)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> None:
        """Start sampling in a daemon thread."""
        self._thread = threading.Thread(target=self._run, name=f"memwatch-{self.master}", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop sampling (bounded wait)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def sample(self) -> None:
        """Take one sample now."""
        for pid in children(self.master):
            value = proc_status_kb(pid, "VmHWM")
            if value is not None and value > self.peak_kb_by_pid.get(pid, 0):
                self.peak_kb_by_pid[pid] = value

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.sample()

    def reset(self) -> None:
        """Forget the peaks seen so far (a new phase starts)."""
        self.sample()
        self.peak_kb_by_pid.clear()

    @property
    def peak_mb(self) -> float:
        """Return the largest peak RSS of any worker seen, in MB."""
        self.sample()
        return round(max(self.peak_kb_by_pid.values(), default=0) / 1024, 1)

    @property
    def workers_seen(self) -> int:
        """Return how many distinct worker processes were seen (recycling adds new ones)."""
        return len(self.peak_kb_by_pid)
