"""Loopback port helpers for the local stack.

Everything the dev stack starts listens on 127.0.0.1 only: Tansu listens on
IPv4 only, and a developer laptop should not expose a trust-auth PostgreSQL.
"""

import contextlib
import socket
import time

LOOPBACK = "127.0.0.1"


def free_port(host: str = LOOPBACK) -> int:
    """A port the OS considers free right now (there is a small race until it is used)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


def free_port_run(count: int, host: str = LOOPBACK, attempts: int = 100) -> int:
    """The first of ``count`` consecutive ports free right now (``import-worker run
    --processes N`` serves process i on port + i)."""
    for _ in range(attempts):
        base = free_port(host)
        if base + count <= 65536 and all(port_is_free(base + i, host) for i in range(count)):
            return base
    raise OSError(f"no run of {count} free ports found")


def port_is_free(port: int, host: str = LOOPBACK) -> bool:
    """Whether a server could bind ``host:port`` now.

    ``SO_REUSEADDR`` mirrors what servers set, so a port only held by sockets in
    TIME_WAIT (a server that just stopped) counts as free.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
        return True


def first_free_port(preferred: int, host: str = LOOPBACK, attempts: int = 50) -> int:
    """``preferred`` if free, else the next free port above it (like "5432 or next free")."""
    for port in range(preferred, min(preferred + attempts, 65536)):
        if port_is_free(port, host):
            return port
    raise RuntimeError(f"no free port in {preferred}..{preferred + attempts - 1} on {host}")


def accepts_connections(port: int, host: str = LOOPBACK, timeout: float = 0.2) -> bool:
    """Whether something accepts TCP connections on ``host:port``."""
    with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=timeout):
        return True
    return False


def wait_for_port(port: int, host: str = LOOPBACK, timeout: float = 10.0) -> bool:
    """Poll until ``host:port`` accepts connections; False when ``timeout`` passes first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if accepts_connections(port, host):
            return True
        time.sleep(0.01)
    return False
