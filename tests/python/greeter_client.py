#!/usr/bin/env python3
"""Calls greeter.Greeter/Hello with grpcio, the reference gRPC implementation.

Usage:
  greeter_client.py --address HOST:PORT [--name NAME] [--timeout SECONDS]
                    [--metadata KEY=VALUE ...] [--compression gzip|deflate|none]

On success prints the greeting (e.g. `Hello, World!`) and exits 0.
On an RPC error prints `ERROR <StatusCode name> <details>` and exits 1.
Bad usage or a missing dependency exits 2 with a message on stderr.
"""

import argparse
import sys

import _common


def main():
    parser = argparse.ArgumentParser(description="Calls greeter.Greeter/Hello.")
    parser.add_argument("--address", required=True, help="HOST:PORT of the server")
    parser.add_argument("--name", default="World", help="the name to greet (default World)")
    parser.add_argument(
        "--timeout", type=float, default=10.0, help="the call's deadline in seconds (default 10)"
    )
    parser.add_argument(
        "--metadata", action="append", default=[], metavar="KEY=VALUE",
        help="a request header; may be repeated",
    )
    parser.add_argument(
        "--compression", choices=sorted(_common.COMPRESSIONS), default="none",
        help="how the request is compressed (grpc-encoding; default none)",
    )
    args = parser.parse_args()

    grpc = _common.import_grpc()
    greeter_pb2, greeter_pb2_grpc = _common.load_stubs("greeter.proto")
    metadata = _common.parse_metadata(args.metadata)

    with grpc.insecure_channel(args.address) as channel:
        stub = greeter_pb2_grpc.GreeterStub(channel)
        try:
            response = stub.Hello(
                greeter_pb2.HelloRequest(name=args.name),
                timeout=args.timeout,
                metadata=metadata or None,
                compression=_common.compression(grpc, args.compression),
            )
        except grpc.RpcError as error:
            _common.print_rpc_error(error)
            return 1
    print(response.greeting, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
