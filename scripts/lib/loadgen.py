"""Small HTTP load and check tools for Tessera's fault and shutdown scripts (standard library only)."""
import argparse
import http.client
import json
import subprocess
import sys
import threading
import time
from collections import Counter


class Client:
    """One keep-alive connection to Tessera."""

    def __init__(self, port, key):
        self.port = port
        self.key = key
        self.connection = None

    def request(self, method, path, body=None, timeout=15):
        """Returns (status, parsed body); raises OSError or http.client errors when no response arrived."""
        if self.connection is None:
            self.connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        headers = {"X-API-Key": self.key}
        payload = None
        if body is not None:
            payload = json.dumps(body)
            headers["Content-Type"] = "application/json"
        try:
            self.connection.request(method, path, body=payload, headers=headers)
            response = self.connection.getresponse()
            data = response.read()
        except Exception:
            self.close()
            raise
        if response.getheader("Connection", "").lower() == "close":
            self.close()
        try:
            parsed = json.loads(data) if data else None
        except ValueError:
            parsed = None
        return response.status, parsed

    def close(self):
        if self.connection is not None:
            self.connection.close()
            self.connection = None


def fault(args):
    """Creates tokens under load while PostgreSQL is stopped and restarted; then checks every 201 token verifies."""
    stop = threading.Event()
    lock = threading.Lock()
    statuses = Counter()
    transport_errors = Counter()
    created = []
    first_201_after_restart = [None]
    restarted_at = [None]
    outage = [False]
    outage_statuses = Counter()

    def worker(index):
        client = Client(args.port, args.key)
        n = 0
        while not stop.is_set():
            n += 1
            try:
                status, body = client.request("POST", "/api/tokens", {"userId": f"fault-{index}", "scopes": ["read"], "expiresInMinutes": 60})
            except Exception as error:  # no response at all
                with lock:
                    transport_errors[type(error).__name__] += 1
                time.sleep(0.05)
                continue
            with lock:
                statuses[status] += 1
                if outage[0]:
                    outage_statuses[status] += 1
                if status == 201:
                    created.append(body["token"])
                    if restarted_at[0] is not None and first_201_after_restart[0] is None:
                        first_201_after_restart[0] = time.monotonic() - restarted_at[0]
            if status == 503:
                time.sleep(0.05)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(args.workers)]
    for thread in threads:
        thread.start()
    time.sleep(args.before)
    print(f"stopping PostgreSQL for {args.outage} s", flush=True)
    outage[0] = True
    subprocess.run(args.stop, shell=True, check=True)
    time.sleep(args.outage)
    subprocess.run(args.start, shell=True, check=True)
    outage[0] = False
    restarted_at[0] = time.monotonic()
    print("PostgreSQL started again", flush=True)
    time.sleep(args.after)
    stop.set()
    for thread in threads:
        thread.join()

    checker = Client(args.port, args.key)
    verified = Counter()
    for token in created:
        status, body = checker.request("POST", "/api/tokens/verify", {"token": token})
        verified["active" if status == 200 and body.get("active") else f"{status} {body}"] += 1
    ready_status, _ = checker.request("GET", "/readyz")

    errors = {status: count for status, count in statuses.items() if status >= 400}
    print(f"responses: {dict(sorted(statuses.items()))}; during the outage: {dict(sorted(outage_statuses.items()))}")
    print(f"requests without a response: {dict(transport_errors)}")
    print(f"tokens answered 201: {len(created)}; verified active afterwards: {verified['active']}")
    recovery = first_201_after_restart[0]
    print(f"first 201 after PostgreSQL returned: {'never' if recovery is None else f'{recovery:.2f} s'}; /readyz now {ready_status}")
    problems = []
    if verified["active"] != len(created):
        problems.append(f"{len(created) - verified['active']} acknowledged tokens do not verify: {dict(verified)}")
    if set(errors) - {503}:
        problems.append(f"errors other than 503: {errors}")
    if outage_statuses.get(503, 0) == 0:
        problems.append("no 503 was seen during the outage")
    if transport_errors:
        problems.append("some requests got no response")
    if recovery is None or ready_status != 200:
        problems.append("the service did not recover")
    for problem in problems:
        print(f"FAIL: {problem}")
    print("fault test " + ("failed" if problems else "passed"))
    return 1 if problems else 0


def shutdown(args):
    """Verifies under load, sends SIGTERM to the server mid-way, and counts failures among accepted requests."""
    stop = threading.Event()
    lock = threading.Lock()
    outcomes = Counter()

    client = Client(args.port, args.key)
    status, body = client.request("POST", "/api/tokens", {"userId": "shutdown", "scopes": [], "expiresInMinutes": 60})
    assert status == 201, status
    token = body["token"]

    def worker():
        client = Client(args.port, args.key)
        while not stop.is_set():
            try:
                status, body = client.request("POST", "/api/tokens/verify", {"token": token})
            except (ConnectionRefusedError, ConnectionResetError, http.client.RemoteDisconnected, BrokenPipeError) as error:
                # The server closed or refused the connection before reading this request: not accepted.
                with lock:
                    outcomes[f"not accepted ({type(error).__name__})"] += 1
                if isinstance(error, ConnectionRefusedError):
                    return
                continue
            except Exception as error:
                with lock:
                    outcomes[f"failed ({type(error).__name__})"] += 1
                continue
            with lock:
                outcomes["ok" if status == 200 and body.get("active") else f"failed ({status})"] += 1

    threads = [threading.Thread(target=worker) for _ in range(args.workers)]
    for thread in threads:
        thread.start()
    time.sleep(args.before)
    started = time.monotonic()
    subprocess.run(["kill", "-TERM", str(args.pid)], check=True)
    deadline = started + args.grace + 5
    exit_code = None
    while time.monotonic() < deadline:
        result = subprocess.run(["sh", "-c", f"kill -0 {args.pid} 2>/dev/null"])
        if result.returncode != 0:
            break
        time.sleep(0.05)
    elapsed = time.monotonic() - started
    stop.set()
    for thread in threads:
        thread.join()
    failed = sum(count for outcome, count in outcomes.items() if outcome.startswith("failed"))
    print(f"outcomes: {dict(outcomes)}")
    print(f"server stopped {elapsed:.2f} s after SIGTERM")
    print(f"failed requests among those accepted: {failed}")
    ok = failed == 0 and outcomes["ok"] > 0 and elapsed < args.grace + 5
    print("shutdown test " + ("passed" if ok else "failed"))
    return 0 if ok else 1


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    f = sub.add_parser("fault")
    f.add_argument("--port", type=int, required=True)
    f.add_argument("--key", required=True)
    f.add_argument("--workers", type=int, default=4)
    f.add_argument("--before", type=float, default=3)
    f.add_argument("--outage", type=float, default=10)
    f.add_argument("--after", type=float, default=8)
    f.add_argument("--stop", required=True)
    f.add_argument("--start", required=True)
    s = sub.add_parser("shutdown")
    s.add_argument("--port", type=int, required=True)
    s.add_argument("--key", required=True)
    s.add_argument("--pid", type=int, required=True)
    s.add_argument("--workers", type=int, default=8)
    s.add_argument("--before", type=float, default=2)
    s.add_argument("--grace", type=float, default=10)
    args = parser.parse_args()
    sys.exit(fault(args) if args.command == "fault" else shutdown(args))


if __name__ == "__main__":
    main()
