#!/usr/bin/env python3
"""Turns Benchmarks/run.sh's results (one JSON object per line) into the Markdown tables of
BENCHMARKS.md, with each performance target marked met or missed from this run's own numbers."""
import json, sys

rows = {}
for line in open(sys.argv[1]):
    r = json.loads(line)
    rows[r["name"]] = r


def f(v, unit=""):
    return "—" if v is None else (f"{v:,.0f}{unit}" if abs(v) >= 100 else f"{v:.1f}{unit}")


out = []
wrk = [n for n in ("node", "kliq-files", "kliq-memory") if n in rows]
if wrk:
    out += ["### 1. Throughput (wrk, closed loop)", "",
            "| receiver | req/s | p50 | p90 | p99 | max | non-2xx | socket errors | peak RSS | server CPU |",
            "|---|---|---|---|---|---|---|---|---|---|"]
    for n in wrk:
        r = rows[n]
        out.append(f"| {n} | {r['rps']:,.0f} | {r['p50']:.1f} ms | {r['p90']:.1f} ms | {r['p99']:.1f} ms | {r['max']:.1f} ms"
                   f" | {r['non2xx']} | {r['errors']} | {r['rss_mib']} MiB | {r['cpu_s']} s |")
    out.append("")
opens = [n for n in ("node-fixed", "kliq-files-fixed", "kliq-soak") if n in rows]
if opens:
    out += ["### 2–3. Fixed offered load (open loop; latency from when each request was due)", "",
            "| run | offered/s | answered/s | p50 | p90 | p99 | p99.9 | max | statuses | errors | RSS samples (MiB) min–max |",
            "|---|---|---|---|---|---|---|---|---|---|---|"]
    for n in opens:
        r = rows[n]
        rss = r.get("rss_mib") or []
        out.append(f"| {n} | {r['offered_per_s']:,.0f} | {r['achieved_per_s']:,.0f} | {f(r['p50_ms'])} ms | {f(r['p90_ms'])} ms"
                   f" | {f(r['p99_ms'])} ms | {f(r['p999_ms'])} ms | {f(r['max_ms'])} ms | {r['status']} | {r['errors']}"
                   f" | {min(rss) if rss else '—'}–{max(rss) if rss else '—'} ({len(rss)} samples) |")
    out.append("")
if "kliq-large" in rows:
    r = rows["kliq-large"]
    out += ["### 4. 500 KB results (~500 KB bodies, 2,800 detections; wrk -c16)", "",
            f"{r['rps']:,.0f} accepted/s, p99 {r['p99']:.1f} ms, non-2xx {r['non2xx']}, peak RSS {r['rss_mib']} MiB.", ""]
if "kliq-full-1" in rows:
    def mean(*names):
        return sum(rows[n]["rps"] for n in names) / len(names)

    def cpu(name):  # the server's CPU time over the requests it answered in the 10 s run
        return f"{rows[name]['cpu_s'] / (rows[name]['rps'] * 10) * 1000:.2f}"
    out += ["### 5. History (runs alternate: empty, full, empty, full)", "",
            "| store | start-up | req/s (wrk, 10 s), each run | mean | p99 | server CPU per delivery | peak RSS |", "|---|---|---|---|---|---|---|",
            f"| empty | {rows['kliq-empty-startup']['ms']} ms | {rows['kliq-empty-1']['rps']:,.0f}, {rows['kliq-empty-2']['rps']:,.0f} | "
            f"{mean('kliq-empty-1', 'kliq-empty-2'):,.0f} | {rows['kliq-empty-1']['p99']:.1f}, {rows['kliq-empty-2']['p99']:.1f} ms | {cpu('kliq-empty-1')}, {cpu('kliq-empty-2')} ms | {rows['kliq-empty-1']['rss_mib']} MiB |",
            f"| {rows['kliq-full-startup']['events']:,} events stored | {rows['kliq-full-startup']['ms']} ms | {rows['kliq-full-1']['rps']:,.0f}, {rows['kliq-full-2']['rps']:,.0f} | "
            f"{mean('kliq-full-1', 'kliq-full-2'):,.0f} | {rows['kliq-full-1']['p99']:.1f}, {rows['kliq-full-2']['p99']:.1f} ms | {cpu('kliq-full-1')}, {cpu('kliq-full-2')} ms | {rows['kliq-full-1']['rss_mib']} MiB |", ""]

targets = []
if {"node", "kliq-files", "kliq-memory"} <= rows.keys():
    node, files, memory = rows["node"]["rps"], rows["kliq-files"]["rps"], rows["kliq-memory"]["rps"]
    targets.append(("accepted/s ≥ 3× the Node.js reference", f"{files / node:.2f}×", files >= 3 * node))
    targets.append(("≥ 50% of our own storage-off ceiling", f"{files / memory:.0%}", files >= 0.5 * memory))
if {"node-fixed", "kliq-files-fixed"} <= rows.keys():
    n, k = rows["node-fixed"], rows["kliq-files-fixed"]
    targets.append((f"p99 at half our max ({k['offered_per_s']:,.0f}/s) ≤ Node's p99 at the same load",
                    f"{k['p99_ms']:,.1f} ms vs Node {n['p99_ms']:,.0f} ms (Node answered {n['achieved_per_s']:,.0f}/s)",
                    k["p99_ms"] <= n["p99_ms"]))
if "kliq-soak" in rows:
    rss = rows["kliq-soak"]["rss_mib"]
    steady = rss[6:] or rss  # after the first 30 s
    peak = max(rss + [rows[n]["rss_mib"] for n in ("kliq-files",) if n in rows])
    flat = (max(steady) - min(steady)) / min(steady)
    targets.append(("server RSS ≤ 64 MiB during the runs", f"peak {peak} MiB", peak <= 64))
    targets.append((f"RSS flat (±10%) over a {rows['kliq-soak']['sent'] / rows['kliq-soak']['offered_per_s']:.0f} s soak",
                    f"{min(steady)}–{max(steady)} MiB after the first 30 s ({flat:.0%} spread)", flat <= 0.10))
if "kliq-full-1" in rows:
    s = rows["kliq-full-startup"]
    targets.append((f"start-up with {s['events']:,} events ≤ 2 s", f"{s['ms'] / 1000:.2f} s", s["ms"] <= 2000))
    ratio = mean("kliq-full-1", "kliq-full-2") / mean("kliq-empty-1", "kliq-empty-2")
    targets.append(("throughput with them ≥ 90% of an empty store's", f"{ratio:.0%}", ratio >= 0.9))
if "kliq-large" in rows:
    r = rows["kliq-large"]
    targets.append(("a 500 KB result accepted at ≥ 200/s", f"{r['rps']:,.0f}/s", r["rps"] >= 200 and r["non2xx"] == 0))
if targets:
    out += ["### Targets", "", "| target | this run | |", "|---|---|---|"]
    out += [f"| {t} | {v} | {'**met**' if ok else '**missed**'} |" for t, v, ok in targets]
print("\n".join(out))
