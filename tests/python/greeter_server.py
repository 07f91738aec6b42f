#!/usr/bin/env python3
"""Serves greeter.Greeter/Hello with grpcio, the reference gRPC implementation.

Usage:
  greeter_server.py --address HOST:PORT [--compression gzip|deflate|none]

Answers `Hello, <name>!`, its responses compressed with --compression when the
client accepts it (grpcio's server-wide default compression). Prints `listening` on a line of stdout (flushed) once
the port is bound, then serves until it gets SIGTERM or SIGINT, and exits 0.
The bound port is also written to stderr (`bound HOST:PORT`), which helps with
`--address 127.0.0.1:0`. Exits 2 when the address cannot be bound.
"""

import argparse
import signal
import sys
import threading
from concurrent import futures

import _common


def main():
    parser = argparse.ArgumentParser(description="Serves greeter.Greeter/Hello.")
    parser.add_argument("--address", required=True, help="HOST:PORT to listen on")
    parser.add_argument(
        "--compression", choices=sorted(_common.COMPRESSIONS), default="none",
        help="how responses are compressed (grpc-encoding; default none)",
    )
    args = parser.parse_args()

    grpc = _common.import_grpc()
    greeter_pb2, greeter_pb2_grpc = _common.load_stubs("greeter.proto")

    class Greeter(greeter_pb2_grpc.GreeterServicer):
        def Hello(self, request, context):
            return greeter_pb2.HelloResponse(greeting=f"Hello, {request.name}!")

    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=8),
        options=[("grpc.so_reuseport", 0)],
        compression=_common.compression(grpc, args.compression),
    )
    greeter_pb2_grpc.add_GreeterServicer_to_server(Greeter(), server)
    try:
        port = server.add_insecure_port(args.address)
    except RuntimeError as error:
        _common.die(f"cannot listen on {args.address}: {error}")
    if not port:
        _common.die(f"cannot listen on {args.address}")

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())

    server.start()
    host = args.address.rsplit(":", 1)[0]
    print(f"bound {host}:{port}", file=sys.stderr, flush=True)
    print("listening", flush=True)
    while not stop.wait(0.5):
        pass
    server.stop(grace=1).wait()
    return 0


if __name__ == "__main__":
    sys.exit(main())
