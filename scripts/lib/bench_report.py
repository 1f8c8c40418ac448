"""The report of scripts/bench, from the results file it writes.

Usage: bench_report.py RESULTS SECONDS CONNECTIONS ROUNDS CLK_TCK MILLION NEW_BINARY [BASELINE_BINARY]

RESULTS holds one line per measurement:
  run ROUND SIDE ROUTE REQ/S P50 P99 REQUESTS CPU_TICKS   a wrk run; SIDE is new or base; ROUND is 1.. or 1e6
  pgbench ROUND NAME TPS AVERAGE_LATENCY_MS               a ceiling: verify, list or create
  rss SIDE CACHE ROUND KB                                 a server's peak RSS (VmHWM) when it stopped
Figures are medians over the rounds; a ratio of two figures taken in the same rounds is the median of its per-round
ratios, since a round's runs are minutes closer in time than two medians may be.
"""
import statistics
import sys

path, seconds, connections, rounds, clock_ticks, million, new_binary = sys.argv[1:8]
baseline_binary = sys.argv[8] if len(sys.argv) > 8 and sys.argv[8] else None
clock_ticks = int(clock_ticks)
sides = ["new", "base"] if baseline_binary else ["new"]
ROUTES = ["healthz", "verify-cached", "verify-uncached", "list", "create"]
CEILING_OF = {"verify-uncached": "verify", "list": "list", "create": "create"}


def milliseconds(text):
    for unit, scale in (("us", 0.001), ("ms", 1.0), ("s", 1000.0), ("m", 60000.0)):
        if text.endswith(unit):
            return float(text[: -len(unit)]) * scale
    raise ValueError(text)


# runs[side][route][round] = dict; ceilings[name][round] = (tps, latency); rss[side] = [(cache, round, kb)]
runs = {side: {} for side in sides}
ceilings = {}
rss = {side: [] for side in sides}
for line in open(path):
    fields = line.split()
    if fields[0] == "run":
        _, rnd, side, route, rps, p50, p99, requests, ticks = fields
        runs.setdefault(side, {}).setdefault(route, {})[rnd] = {
            "rps": float(rps), "p50": milliseconds(p50), "p99": milliseconds(p99),
            "us": int(ticks) / clock_ticks * 1e6 / int(requests), "ticks": int(ticks), "requests": int(requests),
        }
    elif fields[0] == "pgbench":
        _, rnd, name, tps, latency = fields
        ceilings.setdefault(name, {})[rnd] = (float(tps), float(latency))
    elif fields[0] == "rss":
        _, side, cache, rnd, kb = fields
        rss.setdefault(side, []).append((cache, rnd, int(kb)))


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
header = f"{'route':<21}{'µs/req':>8}{'x healthz':>11}{'req/s':>9}{'p50':>10}{'p99':>10}"
if baseline_binary:
    header += f"{'base µs/req':>13}{'base x hz':>11}{'new/base':>10}"
print(header)
for route in table_routes:
    if route not in runs["new"]:
        continue
    line = (f"{route:<21}{column('new', route, 'us'):>8.1f}{show(times_healthz('new', route)[0], '.2f'):>11}"
            f"{column('new', route, 'rps'):>9.0f}{show_ms(column('new', route, 'p50')):>10}{show_ms(column('new', route, 'p99')):>10}")
    if baseline_binary:
        line += (f"{show(column('base', route, 'us'), '.1f'):>13}{show(times_healthz('base', route)[0], '.2f'):>11}"
                 f"{show(new_over_base(route)[0], '.3f'):>10}")
    print(line)
if million == "1":
    print("(verify-uncached-1e6: one run per binary, after the rounds; its x healthz is over healthz's median)")
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
        print(f"  {label:<8} {route:<16} µs/req {series((r['us'] for r in rs.values()), '7.1f')}   req/s {series((r['rps'] for r in rs.values()), '7.0f')}")
if baseline_binary:
    for route in ROUTES:
        print(f"  new/base {route:<16} {series(new_over_base(route)[1], '.3f')}")
for name in ("verify", "list", "create"):
    if name in ceilings:
        print(f"  pgbench  {name:<16} tps    {series((c[0] for c in ceilings[name].values()), '7.0f')}")

mib = lambda kb: kb / 1024
def peak(side, cache, million_run):
    values = [kb for c, rnd, kb in rss[side] if c == cache and (rnd == "1e6") == million_run]
    return mib(max(values)) if values else None
print()
for side in sides:
    label = "new" if side == "new" else "baseline"
    text = f"peak RSS ({label}): {show(peak(side, 'on', False), '.1f')} MiB (cache on), {show(peak(side, 'off', False), '.1f')} MiB (cache off)"
    if million == "1":
        text += f", {show(peak(side, 'off', True), '.1f')} MiB (cache off, 10^6 tokens)"
    print(text)

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
healthz_p99 = column("new", "healthz", "p99")
beside = f"   (healthz p99 {show(healthz_p99, '.2f')} ms)"
target("verify (cache on) p99", column("new", "verify-cached", "p99"), "ms", "<", 5, beside)
target("verify (cache off) p99", column("new", "verify-uncached", "p99"), "ms", "<", 10, beside)
target("list p99", column("new", "list", "p99"), "ms", "<", 15, beside)
target("create p99", column("new", "create", "p99"), "ms", "<", 25, beside)
if million == "1":
    millions = runs["new"].get("verify-uncached-1e6", {})
    ratio = median(r["rps"] for r in millions.values()) / column("new", "verify-uncached", "rps") if millions else None
    target("verify (cache off) req/s, 10^6 / 10^4 tokens", ratio, "x", ">=", 0.67)
peaks = [value for value in (peak("new", "on", False), peak("new", "off", False), peak("new", "off", True)) if value is not None]
target("peak RSS", max(peaks) if peaks else None, "MiB", "<", 128)
if baseline_binary:
    worst = max((new_over_base(route)[0], route) for route in ROUTES if new_over_base(route)[0] is not None)
    target(f"CPU new/baseline, worst route ({worst[1]})", worst[0], "x", "<=", 1.10)
