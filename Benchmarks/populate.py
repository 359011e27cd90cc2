#!/usr/bin/env python3
"""Fill a kliq-webhooks data directory with N stored events (and one job state each), as a store that
has been running for a long time would look: events/<id>.json holding the body, jobs/<id>.json the job.
Ids start at 9,000,000,000 so they never collide with gen_deliveries.py's. Prints progress to stderr.

usage: populate.py DATA_DIR N
"""
import json, os, sys

data, count = sys.argv[1], int(sys.argv[2])
for sub in ("events", "jobs", "ledger/active", "ledger/done", "ledger/dead", "quarantine", "tmp", "state", "journal"):
    os.makedirs(os.path.join(data, sub), mode=0o700, exist_ok=True)
events = os.open(os.path.join(data, "events"), os.O_RDONLY | os.O_DIRECTORY)
jobs = os.open(os.path.join(data, "jobs"), os.O_RDONLY | os.O_DIRECTORY)
detections = [{"objectName": "Product %d" % k, "confidence": 0.9, "boundingBox": {"x": k, "y": 5, "width": 80, "height": 200},
               "attributes": {"facings": 2, "shelfPosition": "eye-level", "priceTag": None}} for k in range(10)]
flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC
for i in range(9_000_000_000, 9_000_000_000 + count):
    job = {"id": "job_h%d" % i, "status": "completed", "model": "shelf-detection-v2", "observationId": "obs_h%d" % i,
           "tenantId": "t_bench", "result": {"detections": detections}, "eventId": "evt_h%d" % i, "updatedAt": "2026-01-01T00:00:00Z"}
    body = json.dumps({"id": "evt_h%d" % i, "type": "cv.job.completed", "tenantId": "t_bench", "timestamp": "2026-01-01T00:00:00Z",
                       "data": {"jobId": job["id"], "observationId": job["observationId"], "model": job["model"],
                                "status": "completed", "result": job["result"]}}, separators=(",", ":")).encode()
    for directory, name, content in ((events, "evt_h%d.json" % i, body), (jobs, "job_h%d.json" % i, json.dumps(job).encode())):
        fd = os.open(name, flags, 0o600, dir_fd=directory)
        os.write(fd, content)
        os.close(fd)
    if (i + 1) % 100_000 == 0:
        print("populate: %d of %d events" % (i + 1 - 9_000_000_000, count), file=sys.stderr, flush=True)
os.sync()
