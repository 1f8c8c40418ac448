"""The report of scripts/bench, from the results file it writes.

Usage: bench_report.py RESULTS SECONDS CONNECTIONS ROUNDS CLK_TCK MILLION NEW_BINARY [BASELINE_BINARY]

RESULTS holds one line per measurement:
  run ROUND SIDE ROUTE REQ/S P50 P99 REQUESTS CPU_TICKS PG_TICKS WRK_TICKS
                                                          a wrk run; SIDE is new or base; ROUND is 1.. or 1e6; the
                                                          CPU time of the server, PostgreSQL (the primary) and wrk
  pgbench ROUND NAME TPS AVERAGE_LATENCY_MS               a ceiling: verify, list or create
  rss SIDE CACHE ROUND KB                                 a server's peak RSS (VmHWM) when it stopped; ROUND is
                                                          replica-N or primary-N for the replica run's servers
  lookups ROUND SIDE ROUTE COUNT                          the replica run: lookups a replica answered in a wrk run
                                                          (tessera_replica_lookups_total, over its label sets)
  skips ROUND SIDE COUNT                                  the replica run: "read replica skipped" lines in the log
                                                          of that round's server with the replica
The replica run's routes are verify-uncached-replica (DATABASE_READ_URL set to a standby) and
verify-uncached-primary (without it), both with VERIFY_CACHE=off, of the new binary only.
Figures are medians over the rounds; a ratio of two figures taken in the same rounds is the median of its per-round
ratios, since a round's runs are minutes closer in time than two medians may be.
"""
import os
import statistics
import sys

path, seconds, connections, rounds, clock_ticks, million, new_binary = sys.argv[1:8]
baseline_binary = sys.argv[8] if len(sys.argv) > 8 and sys.argv[8] else None
clock_ticks = int(clock_ticks)
cores = os.cpu_count()
sides = ["new", "base"] if baseline_binary else ["new"]
ROUTES = ["healthz", "verify-cached", "verify-limited", "verify-rate-limited", "verify-uncached", "list", "create",
          "verify-cached-shared", "verify-rate-limited-shared"]
# Routes of tokens with a policy an older build may not know (it would verify them without spending anything).
POLICY_ROUTES = {"verify-limited", "verify-rate-limited", "verify-rate-limited-shared"}
CEILING_OF = {"verify-uncached": "verify", "list": "list", "create": "create"}


def milliseconds(text):
    for unit, scale in (("us", 0.001), ("ms", 1.0), ("s", 1000.0), ("m", 60000.0)):
        if text.endswith(unit):
            return float(text[: -len(unit)]) * scale
    raise ValueError(text)


# runs[side][route][round] = dict; ceilings[name][round] = (tps, latency); rss[side] = [(cache, round, kb)]
# lookups[route][round] = count; skips[round] = count (the replica run)
runs = {side: {} for side in sides}
ceilings = {}
rss = {side: [] for side in sides}
lookups = {}
skips = {}
for line in open(path):
    fields = line.split()
    if fields[0] == "run":
        _, rnd, side, route, rps, p50, p99, requests, ticks, pg_ticks, wrk_ticks = fields
        per_request = lambda ticks: int(ticks) / clock_ticks * 1e6 / int(requests)
        runs.setdefault(side, {}).setdefault(route, {})[rnd] = {
            "rps": float(rps), "p50": milliseconds(p50), "p99": milliseconds(p99), "us": per_request(ticks),
            "pg_us": per_request(pg_ticks), "wrk_us": per_request(wrk_ticks), "requests": int(requests),
            "busy": (int(ticks) + int(pg_ticks) + int(wrk_ticks)) / clock_ticks / float(seconds) / cores,
        }
    elif fields[0] == "pgbench":
        _, rnd, name, tps, latency = fields
        ceilings.setdefault(name, {})[rnd] = (float(tps), float(latency))
    elif fields[0] == "rss":
        _, side, cache, rnd, kb = fields
        rss.setdefault(side, []).append((cache, rnd, int(kb)))
    elif fields[0] == "lookups":
        _, rnd, side, route, count = fields
        lookups.setdefault(route, {})[rnd] = int(count)
    elif fields[0] == "skips":
        _, rnd, side, count = fields
        skips[rnd] = int(count)


def median(values):
    values = list(values)
    return statistics.median(values) if values else None


def column(side, route, key):
    """The median of one column of a route's runs."""
    return median(r[key] for r in runs[side].get(route, {}).values())


def paired(a, b, value_a, value_b):
    """The median of per-round ratios value_a(a[round]) / value_b(b[round]) over the rounds both have."""
    common = [rnd for rnd in a if rnd in b]
    return median(value_a(a[rnd]) / value_b(b[rnd]) for rnd in common), [value_a(a[rnd]) / value_b(b[rnd]) for rnd in common]


def times_healthz(side, route):
    """A route's CPU per request over /healthz's: per round, or (a run outside the rounds) over healthz's median."""
    mine, healthz = runs[side].get(route, {}), runs[side].get("healthz", {})
    if not mine or not healthz:
        return None, []
    if any(rnd in healthz for rnd in mine):
        return paired(mine, healthz, lambda r: r["us"], lambda r: r["us"])
    return median(r["us"] for r in mine.values()) / column(side, "healthz", "us"), []


def new_over_base(route):
    mine, theirs = runs["new"].get(route, {}), runs.get("base", {}).get(route, {})
    if not mine or not theirs:
        return None, []
    return paired(mine, theirs, lambda r: r["us"], lambda r: r["us"])


def to_ceiling(side, route):
    name = CEILING_OF.get(route)
    mine = runs[side].get(route, {})
    if not name or not mine or name not in ceilings:
        return None, []
    return paired(mine, ceilings[name], lambda r: r["rps"], lambda c: c[0])


show_ms = lambda ms: "-" if ms is None else f"{ms:.2f}ms"
show = lambda value, pattern: "-" if value is None else format(value, pattern)
series = lambda values, pattern: " ".join(format(v, pattern) for v in values)
table_routes = ROUTES + (["verify-uncached-1e6"] if million == "1" else [])

print()
print(f"Tessera benchmark: wrk -t2 -c{connections} -d{seconds}s on 127.0.0.1; 10^4 stored tokens unless noted; medians of")
print(f"{rounds} rounds (route order rotating, binaries alternating); a ratio is the median of its per-round ratios.")
print(f"Server CPU: utime+stime of the server process over each wrk run (CLK_TCK {clock_ticks}) / requests completed.")
print(f"new:      {new_binary}")
if baseline_binary:
    print(f"baseline: {baseline_binary}")
print()
header = f"{'route':<28}{'µs/req':>8}{'x healthz':>11}{'req/s':>9}{'p50':>10}{'p99':>10}"
if baseline_binary:
    header += f"{'base µs/req':>13}{'base x hz':>11}{'new/base':>10}"
print(header)
for route in table_routes:
    if route not in runs["new"]:
        continue
    line = (f"{route:<28}{column('new', route, 'us'):>8.1f}{show(times_healthz('new', route)[0], '.2f'):>11}"
            f"{column('new', route, 'rps'):>9.0f}{show_ms(column('new', route, 'p50')):>10}{show_ms(column('new', route, 'p99')):>10}")
    if baseline_binary:
        line += (f"{show(column('base', route, 'us'), '.1f'):>13}{show(times_healthz('base', route)[0], '.2f'):>11}"
                 f"{show(new_over_base(route)[0], '.3f'):>10}")
    print(line)
if million == "1":
    print("(verify-uncached-1e6: one run per binary, after the rounds; its x healthz is over healthz's median)")
print()
print(f"Where this machine's {cores} cores go, per request (new build; µs of CPU: the server, PostgreSQL, wrk, and all")
print(f"three). busy: the three's CPU over the run's {seconds} s, as a share of the cores. At 100 % busy, all three's")
print(f"CPU per request caps the rate, and with {connections} connections always waiting the mean latency is at least")
print(f"{connections} / that rate (Little's law), however the time is spread.")
print(f"{'route':<28}{'server':>8}{'PG':>8}{'wrk':>8}{'all':>8}{'busy':>7}{'req/s cap':>11}{'mean latency floor':>20}")
floor_of = {}
for route in table_routes:
    if route not in runs["new"]:
        continue
    every = sum(column("new", route, key) for key in ("us", "pg_us", "wrk_us"))
    floor_of[route] = int(connections) * every / 1e6 / cores * 1e3
    print(f"{route:<28}{column('new', route, 'us'):>8.1f}{column('new', route, 'pg_us'):>8.1f}{column('new', route, 'wrk_us'):>8.1f}"
          f"{every:>8.1f}{column('new', route, 'busy'):>7.0%}{cores * 1e6 / every:>11.0f}{show_ms(floor_of[route]):>20}")
print()
print("pgbench ceilings (tps, average latency): " + ", ".join(
    f"{name} {median(c[0] for c in ceilings[name].values()):.0f} ({median(c[1] for c in ceilings[name].values()):.2f} ms)"
    for name in ("verify", "list", "create") if name in ceilings))
for side in sides:
    label = "new" if side == "new" else "baseline"
    print(f"req/s / ceiling ({label}): " + ", ".join(
        f"{route} / pgbench-{CEILING_OF[route]} {show(to_ceiling(side, route)[0], '.2f')}" for route in CEILING_OF))

print()
print("per round:")
for side in sides:
    label = "new" if side == "new" else "baseline"
    for route in ROUTES:
        rs = runs[side].get(route, {})
        print(f"  {label:<8} {route:<28} µs/req {series((r['us'] for r in rs.values()), '7.1f')}   req/s {series((r['rps'] for r in rs.values()), '7.0f')}")
if baseline_binary:
    for route in ROUTES:
        print(f"  new/base {route:<28} {series(new_over_base(route)[1], '.3f')}")
for name in ("verify", "list", "create"):
    if name in ceilings:
        print(f"  pgbench  {name:<16} tps    {series((c[0] for c in ceilings[name].values()), '7.0f')}")

mib = lambda kb: kb / 1024
REPLICA_RUN_PREFIXES = ("replica-", "primary-")
def peak(side, cache, million_run):
    values = [kb for c, rnd, kb in rss[side]
              if c == cache and (rnd == "1e6") == million_run and not rnd.startswith(REPLICA_RUN_PREFIXES)]
    return mib(max(values)) if values else None
print()
for side in sides:
    label = "new" if side == "new" else "baseline"
    text = f"peak RSS ({label}): {show(peak(side, 'on', False), '.1f')} MiB (cache on), {show(peak(side, 'off', False), '.1f')} MiB (cache off)"
    if million == "1":
        text += f", {show(peak(side, 'off', True), '.1f')} MiB (cache off, 10^6 tokens)"
    print(text)

# --- the read replica run ---------------------------------------------------------------------------------------
with_replica, without_replica = (runs["new"].get(f"verify-uncached-{s}", {}) for s in ("replica", "primary"))
if with_replica and without_replica:
    ordered = lambda rs: [rs[rnd] for rnd in sorted(rs, key=int)]
    print()
    print(f"read replica (new binary, uncached verify, 10^4 tokens): a streaming standby of the cluster (pg_basebackup -R,")
    print(f"no apply delay; DATABASE_READ_MAX_LAG_MS {os.environ.get('DATABASE_READ_MAX_LAG_MS', '1000')}). Each round, one server with DATABASE_READ_URL set to")
    print(f"the standby and one without it, which goes first alternating; the standby runs through both.")
    print(f"On this 2-core machine the standby shares the cores with Tessera, the primary and wrk: the point of this run is")
    print(f"no loss and correct answers (every verification answered active), not a speed-up.")
    print(f"{'':<22}{'µs/req':>8}{'req/s':>9}{'p50':>10}{'p99':>10}{'replica lookups':>17}")
    for label, route, rs in (("with replica", "verify-uncached-replica", with_replica),
                             ("primary only", "verify-uncached-primary", without_replica)):
        answered = sum(lookups.get(route, {}).values())
        requests = sum(r["requests"] for r in rs.values())
        print(f"{label:<22}{column('new', route, 'us'):>8.1f}{column('new', route, 'rps'):>9.0f}"
              f"{show_ms(column('new', route, 'p50')):>10}{show_ms(column('new', route, 'p99')):>10}"
              f"{answered:>10} ({answered / requests:.0%})")
    us_ratio, us_ratios = paired(with_replica, without_replica, lambda r: r["us"], lambda r: r["us"])
    rps_ratio, rps_ratios = paired(with_replica, without_replica, lambda r: r["rps"], lambda r: r["rps"])
    p99_ratio, p99_ratios = paired(with_replica, without_replica, lambda r: r["p99"], lambda r: r["p99"])
    print(f"{'replica/primary-only':<22}{us_ratio:>8.3f}{rps_ratio:>9.3f}{'':>10}{p99_ratio:>10.3f}"
          f"   (medians of per-round ratios)")
    print("  per round:")
    for label, rs in (("with replica", with_replica), ("primary only", without_replica)):
        rs = ordered(rs)
        print(f"  {label:<13} µs/req {series((r['us'] for r in rs), '7.1f')}   req/s {series((r['rps'] for r in rs), '7.0f')}"
              f"   p99 {' '.join(show_ms(r['p99']) for r in rs)}")
    # paired() lists its ratios in with_replica's order: the rounds' order, as the results file has them
    print(f"  {'ratio':<13} µs/req {series(us_ratios, '7.3f')}   req/s {series(rps_ratios, '7.3f')}   p99 {series(p99_ratios, '.3f')}")
    replica_lookups = lookups.get("verify-uncached-replica", {})
    print(f"  replica lookups / requests (with replica): " + ", ".join(
        f"{replica_lookups.get(rnd, 0)}/{with_replica[rnd]['requests']}" for rnd in sorted(with_replica, key=int)))
    print(f"  replica lookups (primary only, must be 0): "
          + " ".join(str(count) for _, count in sorted(lookups.get("verify-uncached-primary", {}).items(), key=lambda item: int(item[0]))))
    print(f"  'read replica skipped' log lines (server with replica, from its start): "
          + " ".join(str(count) for _, count in sorted(skips.items(), key=lambda item: int(item[0]))))
    replica_peaks = [kb for c, rnd, kb in rss["new"] if rnd.startswith("replica-")]
    primary_peaks = [kb for c, rnd, kb in rss["new"] if rnd.startswith("primary-")]
    print(f"  peak RSS: {show(mib(max(replica_peaks)) if replica_peaks else None, '.1f')} MiB with the replica, "
          f"{show(mib(max(primary_peaks)) if primary_peaks else None, '.1f')} MiB without")
    if not sum(replica_lookups.values()):
        print("  THE REPLICA ANSWERED NO LOOKUP: tessera_replica_lookups_total stayed 0")

# --- targets: reported, met or missed; the script does not fail on them ---------------------------------------
print()
print("targets (new):")
def target(label, value, unit, comparison, limit, note=""):
    goal = f"target {comparison} {limit:g}{unit}"
    if value is None:
        print(f"  {label:<46}{'-':>10}   {goal:<18}not measured")
        return
    met = value <= limit if comparison == "<=" else value >= limit if comparison == ">=" else value < limit
    print(f"  {label:<46}{f'{value:.2f}{unit}':>10}   {goal:<18}{'met' if met else 'MISSED'}{note}")

target("verify (cache on) CPU / healthz CPU", times_healthz("new", "verify-cached")[0], "x", "<=", 1.6)
target("verify (cache off) CPU / healthz CPU", times_healthz("new", "verify-uncached")[0], "x", "<=", 3)
target("list CPU / healthz CPU", times_healthz("new", "list")[0], "x", "<=", 7)
target("create CPU / healthz CPU", times_healthz("new", "create")[0], "x", "<=", 5)
target("list req/s / pgbench list", to_ceiling("new", "list")[0], "x", ">=", 0.12)
target("create req/s / pgbench create", to_ceiling("new", "create")[0], "x", ">=", 0.5)
target("verify (cache off) req/s / pgbench verify", to_ceiling("new", "verify-uncached")[0], "x", ">=", 0.25)
limited, cached = column("new", "verify-limited", "us"), column("new", "verify-cached", "us")
print(f"  {'usage-limited verify (a write per use) CPU':<46}{show(limited, '.1f'):>10} µs = "
      f"{show(limited / cached if limited and cached else None, '.2f')}x cached verify (reported, no target)")
rate_limited = column("new", "verify-rate-limited", "us")
print(f"  {'rate-limited verify, in memory, CPU':<46}{show(rate_limited, '.1f'):>10} µs = "
      f"{show(rate_limited / cached if rate_limited and cached else None, '.2f')}x cached verify (reported, no target)")
shared, shared_plain = column("new", "verify-rate-limited-shared", "us"), column("new", "verify-cached-shared", "us")
print(f"  {'rate-limited verify, shared in PostgreSQL, CPU':<46}{show(shared, '.1f'):>10} µs = "
      f"{show(shared / shared_plain if shared and shared_plain else None, '.2f')}x cached verify with shared limits "
      f"({show(shared_plain, '.1f')} µs) (reported, no target)")
healthz_p99 = column("new", "healthz", "p99")
for label, route, limit in (("verify (cache on) p99", "verify-cached", 5), ("verify (cache off) p99", "verify-uncached", 10),
                            ("list p99", "list", 15), ("create p99", "create", 25)):
    target(label, column("new", route, "p99"), "ms", "<", limit,
           f"   (healthz p99 {show(healthz_p99, '.2f')} ms; mean latency floor {show_ms(floor_of.get(route))})")
if million == "1":
    millions = runs["new"].get("verify-uncached-1e6", {})
    ratio = median(r["rps"] for r in millions.values()) / column("new", "verify-uncached", "rps") if millions else None
    target("verify (cache off) req/s, 10^6 / 10^4 tokens", ratio, "x", ">=", 0.67)
peaks = [value for value in (peak("new", "on", False), peak("new", "off", False), peak("new", "off", True)) if value is not None]
target("peak RSS", max(peaks) if peaks else None, "MiB", "<", 128)
if baseline_binary:
    # Policy routes are left out: a build without that policy verifies those tokens without spending anything.
    worst = max((new_over_base(route)[0], route) for route in ROUTES
                if route not in POLICY_ROUTES and new_over_base(route)[0] is not None)
    target(f"CPU new/baseline, worst route ({worst[1]})", worst[0], "x", "<=", 1.10)
