"""Verification through a read replica that replays late: fresh tokens, revocations, and what /metrics says."""
import argparse
import subprocess
import sys
import time

from cache_trials import Instance, percentile, revoke_and_time


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--ports", required=True, help="comma separated: the first has its cache on, the others off")
    parser.add_argument("--key", required=True)
    parser.add_argument("--trials", type=int, default=50)
    parser.add_argument("--replay-delay-ms", type=int, required=True)
    parser.add_argument("--purge", required=True, help="the command line that purges every revoked or expired token")
    args = parser.parse_args()
    instances = [Instance(int(port), args.key) for port in args.ports.split(",")]
    admin = instances[0]
    failures = []

    # A token created a moment ago verifies at once everywhere, though the replica has not replayed it yet.
    fresh_misses = 0
    for trial in range(args.trials):
        token = admin.create(f"fresh-{trial}")["token"]
        for instance in instances:
            if not instance.verify(token)["active"]:
                fresh_misses += 1
    print(f"fresh tokens verified at once: {args.trials * len(instances) - fresh_misses} of {args.trials * len(instances)}")
    if fresh_misses:
        failures.append("a fresh token was not active at once")

    # Settled tokens are read from the replica; a revocation reaches every instance within 100 ms all the same.
    settled = [admin.create(f"settled-{trial}") for trial in range(args.trials)]
    rotating = [admin.create(f"rotating-{trial}") for trial in range(args.trials)]
    graced = [admin.create(f"graced-{trial}") for trial in range(min(args.trials, 10))]
    time.sleep(args.replay_delay_ms / 1000 + 1.5)  # replayed, and older than the replicas' lag window
    replica_reads_before = [instance.metric("tessera_replica_lookups_total") for instance in instances]
    for created in settled + rotating + graced:
        for instance in instances:
            assert instance.verify(created["token"])["active"]
    replica_reads = [instance.metric("tessera_replica_lookups_total") - before for instance, before in zip(instances, replica_reads_before)]
    print(f"lookups answered by the replica for {len(settled) + len(rotating) + len(graced)} settled tokens, per instance: {', '.join(f'{r:.0f}' for r in replica_reads)}")
    if any(reads == 0 for reads in replica_reads[1:]):
        failures.append("an uncached instance never read the replica")

    delays = []
    stale_on_revoker = 0
    for created in settled:
        stale, waited = revoke_and_time(admin, created, instances)
        stale_on_revoker += stale
        delays += waited
    # Rotation with no grace ends the old token at once: the same bound, and its replacement verifies at once.
    rotation_delays = []
    for created in rotating:
        stale, waited = revoke_and_time(admin, created, instances, rotate=True)
        stale_on_revoker += stale
        rotation_delays += waited
    r50, r99 = percentile(rotation_delays, 0.5), percentile(rotation_delays, 0.99)
    print(f"time until every instance answers a token rotated with no grace inactive: p50 {r50:.1f} ms, p99 {r99:.1f} ms")
    if r99 >= 100:
        failures.append(f"rotation p99 {r99:.1f} ms is not under 100 ms")
    # Rotation with a grace period: the old token stays active until the grace ends, and no longer than 100 ms after.
    # Client clocks bound the server's: the grace ends after the rotate request was sent plus the grace, and before
    # its answer arrived plus the grace. All rotated tokens are polled in rounds until every instance says inactive.
    grace_seconds = 1
    windows = {}
    for created in graced:
        sent = time.monotonic()
        status, rotated = admin.call("POST", f"/api/tokens/{created['id']}/rotate", {"graceSeconds": grace_seconds})
        assert status == 201, (status, rotated)
        windows[created["token"]] = (sent + grace_seconds, time.monotonic() + grace_seconds)
    early_ends = 0
    staleness = {}  # (token, port) -> ms between the grace's latest end and the last request answered active
    pending = {(created["token"], instance.port): instance for created in graced for instance in instances}
    while pending and time.monotonic() < max(latest for _, latest in windows.values()) + 5:
        for (token, port), instance in list(pending.items()):
            earliest_end, latest_end = windows[token]
            sent = time.monotonic()
            active = instance.active(token)
            if active:
                staleness[(token, port)] = max(0.0, (sent - latest_end) * 1000)
            else:
                if time.monotonic() < earliest_end:
                    early_ends += 1
                staleness.setdefault((token, port), 0.0)
                del pending[(token, port)]
    if pending:
        failures.append(f"{len(pending)} answers still active 5 s past the grace")
    g50, g99 = percentile(list(staleness.values()), 0.5), percentile(list(staleness.values()), 0.99)
    print(f"active answers past the end of a {grace_seconds} s grace ({len(graced)} rotations, every instance): p50 {g50:.1f} ms, "
          f"p99 {g99:.1f} ms; inactive answers before the grace could have ended: {early_ends}")
    if g99 >= 100:
        failures.append(f"end of grace p99 {g99:.1f} ms is not under 100 ms")
    if early_ends:
        failures.append("a token was answered inactive during its grace period")

    # A purge deletes the revoked tokens' rows: every instance answers NOT_FOUND within 100 ms, though the replica
    # replays the deletion 300 ms late and the caches held the revoked rows, and none ever answers one active.
    purged = [created["token"] for created in settled + rotating]
    subprocess.run(args.purge, shell=True, check=True, stdout=subprocess.DEVNULL)
    purged_at = time.monotonic()
    purge_delays, revived = [], 0
    for token in purged:
        for instance in instances:
            while True:
                answer = instance.verify(token)
                revived += answer.get("active") is True
                if answer.get("code") == "NOT_FOUND":
                    break
                if time.monotonic() - purged_at > 5:
                    failures.append(f"port {instance.port} still answers {answer} 5 s after the purge")
                    break
                time.sleep(0.001)
        purge_delays.append((time.monotonic() - purged_at) * 1000)
    time.sleep(args.replay_delay_ms / 1000 + 0.2)
    late = [(token, instance.port, answer) for token in purged for instance in instances
            if (answer := instance.verify(token)).get("code") != "NOT_FOUND"]
    p_first = purge_delays[0]
    print(f"time until every instance answers the first purged token NOT_FOUND: {p_first:.1f} ms; all {len(purged)} checked "
          f"{purge_delays[-1]:.0f} ms after the purge; answered active: {revived}; not NOT_FOUND after the replica replayed it: {len(late)}")
    if p_first >= 100:
        failures.append(f"the purge took {p_first:.1f} ms to reach every instance")
    if revived or late:
        failures.append(f"a purged token was answered active ({revived}) or found again ({late[:3]})")

    p50, p99, worst = percentile(delays, 0.5), percentile(delays, 0.99), max(delays)
    print(f"time until every instance answers a revoked token inactive (replica replaying {args.replay_delay_ms} ms late): "
          f"p50 {p50:.1f} ms, p99 {p99:.1f} ms, max {worst:.1f} ms")
    print(f"verifies on the revoking or rotating instance after its answer that answered active: {stale_on_revoker}")
    if stale_on_revoker:
        failures.append("the revoking instance answered a revoked token active after its 204")
    if p99 >= 100:
        failures.append(f"revocation p99 {p99:.1f} ms is not under 100 ms")
    for instance in instances:
        lag = instance.metric("tessera_replica_lag_seconds")
        print(f"port {instance.port}: tessera_replica_lag_seconds {lag:.3f}")

    if failures:
        print("FAIL: " + "; ".join(failures))
        sys.exit(1)
    print("replica trials passed")


if __name__ == "__main__":
    main()
