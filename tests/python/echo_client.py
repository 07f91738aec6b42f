#!/usr/bin/env python3
"""Calls echo.Echo (proto/echo.proto) with grpcio, one call of the chosen kind.

Usage:
  echo_client.py --address HOST:PORT --kind unary|server|client|bidi
                 [--message M ...] [--count N] [--timeout SECONDS]
                 [--compression gzip|deflate|none]

- unary: sends the first --message; server: sends it with --count;
  client and bidi: send each --message in turn (bidi waits for each reply
  before sending the next, so both directions really stream).

--compression compresses the requests (the channel's default compression).

Prints one line per response, `<index> <message>`, then, if the call failed,
`ERROR <CODE> <details>` (exit 1). Exits 0 when the call succeeded, 2 on bad
usage or when grpcio is missing.
"""

import argparse
import queue
import sys

import _common


def main():
    parser = argparse.ArgumentParser(description="Calls echo.Echo.")
    parser.add_argument("--address", required=True)
    parser.add_argument("--kind", required=True, choices=["unary", "server", "client", "bidi"])
    parser.add_argument("--message", action="append", default=[])
    parser.add_argument("--count", type=int, default=0)
    parser.add_argument("--timeout", type=float, default=10.0)
    parser.add_argument("--compression", choices=sorted(_common.COMPRESSIONS), default="none")
    args = parser.parse_args()

    grpc = _common.import_grpc()
    echo_pb2, echo_pb2_grpc = _common.load_stubs("echo.proto")
    messages = args.message or [""]

    def show(rsp):
        print(f"{rsp.index} {rsp.message}", flush=True)

    compression = _common.compression(grpc, args.compression)
    with grpc.insecure_channel(args.address, compression=compression) as channel:
        stub = echo_pb2_grpc.EchoStub(channel)
        try:
            if args.kind == "unary":
                show(stub.Unary(echo_pb2.EchoRequest(message=messages[0]), timeout=args.timeout))
            elif args.kind == "server":
                req = echo_pb2.EchoRequest(message=messages[0], count=args.count)
                for rsp in stub.ServerStream(req, timeout=args.timeout):
                    show(rsp)
            elif args.kind == "client":
                reqs = (echo_pb2.EchoRequest(message=m) for m in messages)
                show(stub.ClientStream(reqs, timeout=args.timeout))
            else:
                # Ping-pong: the next request goes only after the previous reply.
                outbox = queue.Queue()

                def requests():
                    while True:
                        item = outbox.get()
                        if item is None:
                            return
                        yield item

                replies = stub.Bidi(requests(), timeout=args.timeout)
                for m in messages:
                    outbox.put(echo_pb2.EchoRequest(message=m))
                    show(next(replies))
                outbox.put(None)
                for rsp in replies:
                    show(rsp)
        except grpc.RpcError as error:
            _common.print_rpc_error(error)
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
