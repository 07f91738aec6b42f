#!/usr/bin/env python3
"""Asks a server's standard gRPC health service, with grpcio-health-checking's client.

Usage:
  health_check.py --address HOST:PORT [--service NAME] [--timeout SECONDS]

Calls grpc.health.v1.Health/Check for --service (default: the empty name, the server as a
whole). Prints `STATUS <name>` (SERVING, NOT_SERVING, ...) and exits 0, or on an RPC error
prints `ERROR <StatusCode name> <details>` and exits 1. Bad usage exits 2.
"""

import argparse
import sys

import _common


def main():
    parser = argparse.ArgumentParser(description="Checks a server's health.")
    parser.add_argument("--address", required=True, help="HOST:PORT of the server")
    parser.add_argument("--service", default="", help="the service asked about")
    parser.add_argument("--timeout", type=float, default=10.0, help="deadline in seconds")
    args = parser.parse_args()

    grpc = _common.import_grpc()
    try:
        from grpc_health.v1 import health_pb2, health_pb2_grpc
    except ImportError:
        _common.die(
            "the Python package grpcio-health-checking is missing: "
            "python3 -m pip install grpcio-health-checking"
        )
    with grpc.insecure_channel(args.address) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        try:
            rsp = stub.Check(
                health_pb2.HealthCheckRequest(service=args.service), timeout=args.timeout
            )
        except grpc.RpcError as error:
            _common.print_rpc_error(error)
            return 1
    name = health_pb2.HealthCheckResponse.ServingStatus.Name(rsp.status)
    print(f"STATUS {name}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
