#!/usr/bin/env python3
"""A program with an HTTP health check, for the sidecar's tests.

Usage:
  health_http.py FLAG_FILE

Serves on 127.0.0.1 (a free port): GET of a path ending in /health answers 200 while
FLAG_FILE exists, else 503; any other GET 404; a POST answers 200 with its body echoed and
the path it was sent to in `X-Seen-Path` (what a proxy forwarded). Prints
`bound 127.0.0.1:PORT` on a line of stderr (flushed) once listening, then serves until
SIGTERM or SIGINT.
"""

import http.server
import os
import signal
import sys


class Handler(http.server.BaseHTTPRequestHandler):
    def do_POST(self):  # noqa: N802 (the standard library's name)
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("X-Seen-Path", self.path)
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):  # noqa: N802 (the standard library's name)
        if not self.path.endswith("/health"):
            status = 404
        elif os.path.exists(sys.argv[1]):
            status = 200
        else:
            status = 503
        body = b"ok\n" if status == 200 else b"not ok\n"
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def main():
    if len(sys.argv) != 2:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    host, port = server.server_address[:2]
    print(f"bound {host}:{port}", file=sys.stderr, flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
