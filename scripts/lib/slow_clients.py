"""Raw-socket clients that are slow, idle or malformed, and what the server must do with each."""
import argparse
import socket
import sys
import time

args = None


def connect():
    return socket.create_connection(("127.0.0.1", args.port), timeout=30)


def read_until_closed(sock, limit):
    """Everything the server sends until it closes the connection, and how long that took; fails past `limit`."""
    started = time.monotonic()
    sock.settimeout(limit)
    data = b""
    try:
        while True:
            chunk = sock.recv(4096)
            if not chunk:
                return data, time.monotonic() - started
            data += chunk
    except socket.timeout:
        raise AssertionError(f"the connection was still open after {limit} s; received {data[:80]!r}")


def trickle(sock, data, every, until):
    """Sends `data` a byte every `every` seconds until the server closes the connection or `until` passes."""
    started = time.monotonic()
    for byte in data:
        try:
            sock.sendall(bytes([byte]))
        except (BrokenPipeError, ConnectionResetError):
            return time.monotonic() - started
        time.sleep(every)
        if time.monotonic() - started > until:
            raise AssertionError(f"still sending after {until} s: the server never closed the connection")
    raise AssertionError("ran out of bytes to trickle before the server closed the connection")


def status(response):
    return int(response.split(b" ", 2)[1]) if response.startswith(b"HTTP/1.1 ") else None


def check(name, condition, detail=""):
    if not condition:
        raise AssertionError(f"{name}: {detail}")
    print(f"ok - {name}{': ' + detail if detail else ''}", flush=True)


def main():
    global args
    parser = argparse.ArgumentParser(description=__doc__)
    for option in ["--port", "--idle", "--read", "--connections"]:
        parser.add_argument(option, type=int, required=True)
    parser.add_argument("--key", required=True)
    args = parser.parse_args()
    key = args.key.encode()
    head = b"POST /api/tokens HTTP/1.1\r\nHost: t\r\nX-API-Key: " + key + b"\r\nContent-Type: application/json\r\n"

    # An idle socket, and a kept-alive one after its answer, are closed after the idle timeout.
    sock = connect()
    _, waited = read_until_closed(sock, args.idle + 3)
    check("an idle connection is closed", waited >= args.idle - 0.5, f"after {waited:.1f} s")
    sock = connect()
    sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n")
    response, waited = read_until_closed(sock, args.idle + 3)
    check("a kept-alive connection is answered, then closed when idle", status(response) == 200 and waited >= args.idle - 0.5, f"after {waited:.1f} s")

    # A head or a body trickled a byte at a time (never idle) is cut off by the read timeout.
    for name, prefix, rest in [
        ("a trickled head", b"", head + b"Content-Length: 20\r\n\r\n" + b"{}" * 100),
        ("a trickled body", head + b"Content-Length: 400\r\n\r\n", b'{"userId":"' + b"a" * 380),
    ]:
        sock = connect()
        sock.sendall(prefix)
        lasted = trickle(sock, rest, 0.2, args.read + 5)
        check(f"{name} is cut off by the read timeout", lasted < args.read + 2, f"closed after {lasted:.1f} s")

    # A body declared far too large is refused at once, without waiting for it.
    sock = connect()
    started = time.monotonic()
    sock.sendall(head + b"Content-Length: 1000000000\r\n\r\n")
    sock.settimeout(5)
    first = sock.recv(4096)
    answered = time.monotonic() - started
    check("a declared gigabyte body gets 413 at once", status(first) == 413 and answered < 1, f"in {answered * 1000:.0f} ms")
    check("that answer closes the connection", b"\r\nConnection: close\r\n" in first)
    sock.close()

    # Framing the server cannot read is the client's mistake: 400, not 500.
    for name, request in [
        ("an unknown Transfer-Encoding", head + b"Transfer-Encoding: gzip\r\n\r\nabc"),
        ("a malformed chunked body", head + b"Transfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n"),
    ]:
        sock = connect()
        sock.sendall(request)
        response, _ = read_until_closed(sock, 5)
        check(f"{name} gets 400", status(response) == 400, response.split(b"\r\n", 1)[0].decode())

    # Past HTTP_MAX_CONNECTIONS a new connection waits, unanswered, until one closes.
    held = [connect() for _ in range(args.connections)]
    time.sleep(0.3)
    extra = connect()
    extra.sendall(b"GET /healthz HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
    extra.settimeout(0.7)
    try:
        early = extra.recv(4096)
    except socket.timeout:
        early = b""
    check(f"with {args.connections} connections open, another waits", early == b"")
    held.pop().close()
    response, _ = read_until_closed(extra, 5)
    check("once one closes, the waiting one is answered", status(response) == 200)
    for sock in held:
        sock.close()


if __name__ == "__main__":
    try:
        main()
    except AssertionError as error:
        print(f"slow-client test failed: {error}")
        sys.exit(1)
