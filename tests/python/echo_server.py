#!/usr/bin/env python3
"""Serves echo.Echo (proto/echo.proto) with grpcio, the reference gRPC implementation.

Usage:
  echo_server.py --address HOST:PORT

The four methods as proto/echo.proto describes them; a request whose message is
`fail` ends the method with INVALID_ARGUMENT, after the replies sent so far.
Prints `listening` on a line of stdout (flushed) once the port is bound, then
serves until SIGTERM or SIGINT, and exits 0. Exits 2 when the address cannot be
bound.
"""

import argparse
import signal
import sys
import threading
from concurrent import futures

import _common


def main():
    parser = argparse.ArgumentParser(description="Serves echo.Echo.")
    parser.add_argument("--address", required=True, help="HOST:PORT to listen on")
    args = parser.parse_args()

    grpc = _common.import_grpc()
    echo_pb2, echo_pb2_grpc = _common.load_stubs("echo.proto")

    def refuse(context, message):
        if message == "fail":
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, "asked to fail")

    class Echo(echo_pb2_grpc.EchoServicer):
        def Unary(self, request, context):
            refuse(context, request.message)
            return echo_pb2.EchoResponse(message=request.message, index=0)

        def ServerStream(self, request, context):
            for index in range(request.count):
                if index >= 1:
                    refuse(context, request.message)
                yield echo_pb2.EchoResponse(message=request.message, index=index)

        def ClientStream(self, request_iterator, context):
            messages = []
            for request in request_iterator:
                refuse(context, request.message)
                messages.append(request.message)
            return echo_pb2.EchoResponse(message=",".join(messages), index=len(messages))

        def Bidi(self, request_iterator, context):
            for index, request in enumerate(request_iterator):
                refuse(context, request.message)
                yield echo_pb2.EchoResponse(message=request.message, index=index)

    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=8),
        options=[("grpc.so_reuseport", 0)],
    )
    echo_pb2_grpc.add_EchoServicer_to_server(Echo(), server)
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
    print("listening", flush=True)
    while not stop.wait(0.5):
        pass
    server.stop(grace=1).wait()
    return 0


if __name__ == "__main__":
    sys.exit(main())
