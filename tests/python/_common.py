"""Shared helpers of the Python interop scripts.

The stubs for ``proto/greeter.proto`` are generated at run time with
``grpc_tools.protoc`` into a private temporary directory, so that no generated
code is committed and scripts running in parallel never share one output
directory.
"""

import atexit
import importlib
import os
import shutil
import sys
import tempfile

# tests/python/<this file> -> repository root.
REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PROTO_DIR = os.path.join(REPO_ROOT, "proto")


def die(message, code=2):
    """Prints `message` to stderr and exits with `code`."""
    print(f"{os.path.basename(sys.argv[0])}: {message}", file=sys.stderr, flush=True)
    sys.exit(code)


def import_grpc():
    """Imports grpc, with a clear message when grpcio is missing."""
    try:
        import grpc  # noqa: F401
    except ImportError:
        die("the Python package grpcio is missing: python3 -m pip install grpcio grpcio-tools")
    return sys.modules["grpc"]


def load_stubs(proto="greeter.proto"):
    """Generates the Python modules of `proto` (a file in proto/) and imports them.

    Returns the pair (messages module, services module), e.g. greeter_pb2 and
    greeter_pb2_grpc.
    """
    import_grpc()
    try:
        from grpc_tools import protoc
    except ImportError:
        die("the Python package grpcio-tools is missing: python3 -m pip install grpcio-tools")
    import importlib.resources

    proto_path = os.path.join(PROTO_DIR, proto)
    if not os.path.isfile(proto_path):
        die(f"no such proto file: {proto_path}")
    out_dir = tempfile.mkdtemp(prefix="micro-pystubs-")
    atexit.register(shutil.rmtree, out_dir, ignore_errors=True)
    well_known = str(importlib.resources.files("grpc_tools") / "_proto")
    args = [
        "grpc_tools.protoc",
        f"-I{PROTO_DIR}",
        f"-I{well_known}",
        f"--python_out={out_dir}",
        f"--grpc_python_out={out_dir}",
        proto_path,
    ]
    if protoc.main(args) != 0:
        die(f"grpc_tools.protoc failed on {proto_path}")
    sys.path.insert(0, out_dir)
    stem = os.path.splitext(os.path.basename(proto))[0]
    return importlib.import_module(f"{stem}_pb2"), importlib.import_module(f"{stem}_pb2_grpc")


# --compression's choices: grpcio's algorithms.
COMPRESSIONS = {"none": "NoCompression", "gzip": "Gzip", "deflate": "Deflate"}


def compression(grpc, name):
    """The grpc.Compression value of a --compression choice."""
    return getattr(grpc.Compression, COMPRESSIONS[name])


def parse_metadata(pairs):
    """Turns ['key=value', ...] into gRPC metadata, keys lower-cased."""
    metadata = []
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            die(f"bad --metadata {pair!r}: expected KEY=VALUE")
        metadata.append((key.strip().lower(), value))
    return metadata


def print_rpc_error(error):
    """Prints `ERROR <StatusCode name> <details>` on one line of stdout."""
    code = error.code()
    name = code.name if code is not None else "UNKNOWN"
    details = error.details() or ""
    details = " ".join(details.splitlines())
    print(f"ERROR {name} {details}".rstrip(), flush=True)
