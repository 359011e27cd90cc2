#!/usr/bin/env python3
"""Open-loop load at a fixed rate: request i is due at start + i/RATE whether or not earlier ones were
answered, and its latency is measured from when it was due (so a stalled server is charged for the
requests that queued behind the stall: no coordinated omission). Up to CONNECTIONS keep-alive
connections carry the requests; a due request waits for a free one.

usage: openloop.py URL DELIVERIES RATE SECONDS [--connections 64] [--skip N] [--pid PID] [--json OUT]
DELIVERIES is gen_deliveries.py output ("<signature>\t<body>" per line); each is sent once, in order,
starting at line --skip. With --pid, the process's resident memory (VmRSS) is sampled every 5 s.
Prints one JSON object: offered and achieved rate, latency percentiles (ms), errors, RSS samples (MiB).
"""
import argparse, asyncio, json, time
from urllib.parse import urlparse


def load(path, skip, count):
    out = []
    with open(path, "rb") as f:
        for n, line in enumerate(f):
            if n < skip:
                continue
            if len(out) == count:
                break
            sig, body = line.rstrip(b"\n").split(b"\t", 1)
            out.append((sig, body))
    if len(out) < count:
        raise SystemExit(f"openloop: {path} has {len(out)} deliveries after line {skip}; {count} needed")
    return out


def rss_mib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


async def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("url"); ap.add_argument("deliveries"); ap.add_argument("rate", type=float); ap.add_argument("seconds", type=float)
    ap.add_argument("--connections", type=int, default=64); ap.add_argument("--skip", type=int, default=0)
    ap.add_argument("--pid", type=int); ap.add_argument("--json")
    a = ap.parse_args()
    url = urlparse(a.url)
    total = int(a.rate * a.seconds)
    deliveries = load(a.deliveries, a.skip, total)
    requests = [b"POST " + url.path.encode() + b" HTTP/1.1\r\nHost: " + url.netloc.encode()
                + b"\r\nContent-Type: application/json\r\nX-Kliq-Signature: " + sig
                + b"\r\nContent-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body for sig, body in deliveries]
    queue = asyncio.Queue()
    latencies, statuses, errors = [], {}, [0]
    rss = []

    async def worker():
        reader = writer = None
        while True:
            item = await queue.get()
            if item is None:
                break
            due, payload = item
            try:
                if writer is None:
                    reader, writer = await asyncio.open_connection(url.hostname, url.port)
                writer.write(payload)
                head = await reader.readuntil(b"\r\n\r\n")
                status = int(head.split(b" ", 2)[1])
                length, chunked = 0, False
                for line in head.split(b"\r\n"):
                    lower = line.lower()
                    if lower.startswith(b"content-length:"):
                        length = int(line.split(b":", 1)[1])
                    elif lower.startswith(b"transfer-encoding:") and b"chunked" in lower:
                        chunked = True
                if chunked:  # Node's answers: chunks, then a zero-size one and the (empty) trailer
                    while True:
                        size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
                        await reader.readexactly(size + 2)
                        if size == 0:
                            break
                elif length:
                    await reader.readexactly(length)
                statuses[status] = statuses.get(status, 0) + 1
                latencies.append(time.monotonic() - due)
                if b"connection: close" in head.lower():
                    writer.close(); writer = None
            except (OSError, asyncio.IncompleteReadError, ValueError, IndexError):
                errors[0] += 1
                if writer is not None:
                    writer.close()
                writer = None
        if writer is not None:
            writer.close()

    async def sampler():
        while a.pid:
            try:
                rss.append(round(rss_mib(a.pid), 1))
            except OSError:
                return
            await asyncio.sleep(5)

    workers = [asyncio.create_task(worker()) for _ in range(a.connections)]
    sampling = asyncio.create_task(sampler())
    start = time.monotonic()
    for i, payload in enumerate(requests):
        due = start + i / a.rate
        delay = due - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        queue.put_nowait((due, payload))
    for _ in workers:
        queue.put_nowait(None)
    await asyncio.gather(*workers)
    elapsed = time.monotonic() - start
    sampling.cancel()
    if a.pid:
        rss.append(round(rss_mib(a.pid), 1))
    latencies.sort()

    def pct(p):
        return round(latencies[min(len(latencies) - 1, int(p / 100 * len(latencies)))] * 1000, 2) if latencies else None

    result = {
        "offered_per_s": a.rate, "sent": total, "answered": len(latencies), "achieved_per_s": round(len(latencies) / elapsed, 1),
        "p50_ms": pct(50), "p90_ms": pct(90), "p99_ms": pct(99), "p999_ms": pct(99.9),
        "max_ms": round(latencies[-1] * 1000, 2) if latencies else None,
        "status": {str(k): v for k, v in sorted(statuses.items())}, "errors": errors[0], "rss_mib": rss,
    }
    text = json.dumps(result)
    if a.json:
        with open(a.json, "w") as f:
            f.write(text + "\n")
    print(text)


if __name__ == "__main__":
    asyncio.run(main())
