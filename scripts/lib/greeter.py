"""What the Python tools of this repository (benches/idle-memory) need
to run a greeter server and call it: a free loopback port, whether the server listens yet
(read from /proc, so no connection is made), and unary `greeter.Greeter/Hello` calls through
h2load. Loopback only.
"""

from __future__ import annotations

import socket
import subprocess
import tempfile
from pathlib import Path

# A `greeter.Greeter/Hello` request as a gRPC message: uncompressed, 5 bytes, name "Ada".
HELLO = b"\x00\x00\x00\x00\x05\x0a\x03Ada"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def listening(port: int) -> bool:
    """Whether 127.0.0.1:port is in LISTEN state, read from /proc/net/tcp: a test connection
    would run the server's accept path, which neither a profile of start-up nor an idle
    memory figure should hold."""
    want = f"0100007F:{port:04X}"
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if fields[1] == want and fields[3] == "0A":
            return True
    return False


def hello_calls(port: int, calls: int, timeout: float = 120) -> str | None:
    """Makes `calls` unary calls one after another on one connection with h2load; returns
    None when all succeeded, else h2load's output."""
    with tempfile.TemporaryDirectory() as tmp:
        body = Path(tmp) / "hello.bin"
        body.write_bytes(HELLO)
        load = subprocess.run(
            [
                "h2load", "-n", str(calls), "-c", "1", "-m", "1",
                "-H", "content-type: application/grpc", "-H", "te: trailers",
                "-d", str(body), f"http://127.0.0.1:{port}/greeter.Greeter/Hello",
            ],
            capture_output=True, text=True, timeout=timeout,
        )
    if f"{calls} succeeded" in load.stdout:
        return None
    return load.stdout + load.stderr
