#!/usr/bin/env python3
"""Sends raw bytes as a unary gRPC request with grpcio, the reference gRPC implementation.

Usage:
  raw_call.py --address HOST:PORT --path /pkg.Service/Method --body-hex HEX
              [--content-type application/grpc] [--timeout SECONDS]
              [--metadata KEY=VALUE ...]

The body is sent as is (no serializer), so a test can send undecodable messages
or call unknown paths through a real gRPC client.

On success prints `OK <hex of the response body>` (just `OK` for an empty body)
and exits 0. On an RPC error prints `ERROR <StatusCode name> <details>` and
exits 1. Bad usage exits 2 with a message on stderr.

--content-type: grpcio always sends `content-type: application/grpc` and
does not let a caller choose another one, so only `application/grpc` (the
default) is accepted; anything else exits 2.
"""

import argparse
import binascii
import sys

import _common


def main():
    parser = argparse.ArgumentParser(description="Sends a raw unary gRPC request.")
    parser.add_argument("--address", required=True, help="HOST:PORT of the server")
    parser.add_argument("--path", required=True, help="the method path, /pkg.Service/Method")
    parser.add_argument("--body-hex", required=True, help="the request body in hex (may be empty)")
    parser.add_argument(
        "--content-type", default="application/grpc",
        help="only application/grpc: grpcio sends no other",
    )
    parser.add_argument(
        "--timeout", type=float, default=10.0, help="the call's deadline in seconds (default 10)"
    )
    parser.add_argument(
        "--metadata", action="append", default=[], metavar="KEY=VALUE",
        help="a request header; may be repeated",
    )
    args = parser.parse_args()

    if args.content_type != "application/grpc":
        _common.die(
            f"--content-type {args.content_type!r}: grpcio only sends application/grpc"
        )
    if not args.path.startswith("/"):
        _common.die(f"--path {args.path!r} must start with /")
    try:
        body = binascii.unhexlify("".join(args.body_hex.split()))
    except (binascii.Error, ValueError) as error:
        _common.die(f"bad --body-hex: {error}")
    metadata = _common.parse_metadata(args.metadata)

    grpc = _common.import_grpc()
    with grpc.insecure_channel(args.address) as channel:
        call = channel.unary_unary(
            args.path, request_serializer=None, response_deserializer=None
        )
        try:
            response = call(body, timeout=args.timeout, metadata=metadata or None)
        except grpc.RpcError as error:
            _common.print_rpc_error(error)
            return 1
    print(f"OK {binascii.hexlify(response).decode()}".rstrip(), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
