"""Revocation across instances: revoke through one Tessera, then time how long the others keep answering active."""
import argparse
import http.client
import json
import sys
import time


class Instance:
    def __init__(self, port, key):
        self.port = port
        self.key = key
        self.connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)

    def call(self, method, path, body=None):
        headers = {"X-API-Key": self.key}
        payload = None
        if body is not None:
            headers["Content-Type"] = "application/json"
            payload = json.dumps(body)
        self.connection.request(method, path, body=payload, headers=headers)
        response = self.connection.getresponse()
        data = response.read()
        if response.getheader("Content-Type", "").startswith("text/plain"):
            return response.status, data.decode()
        return response.status, (json.loads(data) if data else None)

    def verify(self, token):
        status, body = self.call("POST", "/api/tokens/verify", {"token": token})
        assert status == 200, (status, body)
        return body

    def active(self, token):
        return self.verify(token)["active"]

    def create(self, user):
        status, created = self.call("POST", "/api/tokens", {"userId": user, "scopes": [], "expiresInMinutes": 60})
        assert status == 201, (status, created)
        return created

    def metric(self, name):
        """The sum of every series of the metric `name` in /metrics."""
        status, text = self.call("GET", "/metrics")
        assert status == 200, status
        return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line.startswith(name))


def revoke_and_time(revoker, created, instances, rotate=False):
    """Revokes `created` through `revoker` (or, with `rotate`, rotates it with no grace, so it expires at once);
    returns whether the revoker still answered it active right after its answer, and each instance's time in
    milliseconds until it answers inactive (failing after 5 s)."""
    if rotate:
        status, rotated = revoker.call("POST", f"/api/tokens/{created['id']}/rotate", {"graceSeconds": 0})
        assert status == 201, (status, rotated)
    else:
        status, _ = revoker.call("DELETE", f"/api/tokens/{created['id']}")
        assert status == 204, status
    ended_at = time.monotonic()
    stale_on_revoker = revoker.active(created["token"])
    delays = []
    for instance in instances:
        while instance.active(created["token"]):
            if time.monotonic() - ended_at > 5:
                print(f"FAIL: instance on port {instance.port} still answers active 5 s after the {'rotation' if rotate else 'revoke'}")
                sys.exit(1)
            time.sleep(0.001)
        delays.append((time.monotonic() - ended_at) * 1000)
    if rotate:
        for instance in instances:
            assert instance.active(rotated["token"]), f"port {instance.port}: the replacement is not active at once"
    return stale_on_revoker, delays


def percentile(values, fraction):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--ports", required=True, help="comma separated; the first revokes")
    parser.add_argument("--key", required=True)
    parser.add_argument("--trials", type=int, default=200)
    args = parser.parse_args()
    instances = [Instance(int(port), args.key) for port in args.ports.split(",")]
    revoker, others = instances[0], instances[1:]

    delays = []
    stale_on_revoker = 0
    cached_before = 0
    for trial in range(args.trials):
        created = revoker.create(f"cache-{trial}")
        token = created["token"]
        # Warm every cache: each instance has now verified (and cached) the token as active.
        for instance in instances:
            assert instance.active(token)
            assert instance.active(token)
            cached_before += 1
        stale, waited = revoke_and_time(revoker, created, others)
        stale_on_revoker += stale
        delays += waited

    p50, p99, worst = percentile(delays, 0.5), percentile(delays, 0.99), max(delays)
    print(f"trials: {args.trials}; instances: {len(instances)} (revoking through port {revoker.port})")
    print(f"time until the other instances answer inactive: p50 {p50:.1f} ms, p99 {p99:.1f} ms, max {worst:.1f} ms")
    print(f"verifies on the revoking instance after its 204 that answered active: {stale_on_revoker}")
    ok = p99 < 100 and stale_on_revoker == 0
    print("cache invalidation test " + ("passed" if ok else "failed"))
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
