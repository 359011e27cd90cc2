#!/usr/bin/env python3
"""Makes the 0.5.1 data directory fixture with the 0.5.1 release's own `kliq-webhooks` binary.

    python3 Fixtures/datadir-0.5.1/make.py PATH/TO/0.5.1/kliq-webhooks

Writes `Fixtures/datadir-0.5.1/kliq-data/` (the data directory, as 0.5.1 left it) and
`bodies/` (each event's exact bytes, named by position). What it holds, for the upgrade tests
(`UpgradeTests`):

- two events whose `--forward` deliveries are dead (the forward target answered 500;
  `--retry-attempts 1`), left by a clean shutdown;
- three events whose deliveries were still pending when `serve` was SIGKILLed while the forward
  target held the requests open; one has an id that is not a safe file name. The kill leaves the
  journal un-checkpointed, so opening it replays segments written by 0.5.1.

0.5.1 kept no signature with its events: a newer version forwards these signed with the first
secret. Only loopback is used; everything stops by itself.
"""
import hashlib
import hmac
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, HTTPServer

SECRET = "whsec_fixture_051"
HERE = os.path.dirname(os.path.abspath(__file__))
DATA = os.path.join(HERE, "kliq-data")
BODIES = os.path.join(HERE, "bodies")


def event(eid, etype, job, status, minute):
    data = {"jobId": job, "observationId": "obs_" + job, "model": "shelf-detection-v2", "status": status} if job else {
        "visitId": "visit_upgrade", "locationId": "loc_1"}
    if status == "completed":
        data["result"] = {"detections": [{"objectName": "Cola 330ml", "confidence": 0.97,
                                          "boundingBox": {"x": 10, "y": 20, "width": 60, "height": 140}}],
                          "summary": {"totalProducts": 1, "uniqueSKUs": 1, "outOfStock": [], "complianceScore": 0.9}}
    body = {"id": eid, "type": etype, "tenantId": "t_upgrade", "timestamp": "2026-11-20T10:%02d:00Z" % minute, "data": data}
    return json.dumps(body, separators=(",", ":")).encode()


DEAD = [event("evt_up_dead_1", "cv.job.created", "job_up_1", "queued", 0),
        event("evt_up_dead_2", "cv.job.completed", "job_up_1", "completed", 5)]
PENDING = [event("evt_up_pending_1", "cv.job.completed", "job_up_2", "completed", 7),
           event("evt_up_pending_2", "visit.submitted", None, None, 8),
           event("evt up/unsafe:3", "cv.job.failed", "job_up_3", "failed", 9)]


def serve(binary, forward):
    log = open(os.path.join(HERE, "serve.log"), "ab")
    proc = subprocess.Popen([binary, "serve", "--port", "0", "--data-dir", DATA, "--forward", forward,
                             "--retry-attempts", "1", "--metrics-port", "off"],
                            env={"PATH": os.environ["PATH"], "KLIQ_WEBHOOK_SECRET": SECRET}, stdout=subprocess.PIPE, stderr=log)
    line = proc.stdout.readline().decode()
    port = int(line.split("listening on http://127.0.0.1:")[1].split("/")[0])
    return proc, port


def post(port, body):
    sig = hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    req = urllib.request.Request("http://127.0.0.1:%d/webhooks/kliq" % port, data=body,
                                 headers={"X-Kliq-Signature": sig, "Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=10) as r:
        answer = json.load(r)
        assert answer["status"] == "accepted", answer


def wait_for(what, check, seconds=30):
    deadline = time.time() + seconds
    while time.time() < deadline:
        if check():
            return
        time.sleep(0.05)
    sys.exit("timed out waiting for " + what)


def main():
    binary = sys.argv[1]
    shutil.rmtree(DATA, ignore_errors=True)
    shutil.rmtree(BODIES, ignore_errors=True)
    os.makedirs(BODIES)
    for i, body in enumerate(DEAD + PENDING):
        with open(os.path.join(BODIES, "%d.json" % i), "wb") as f:
            f.write(body)

    # 1. Dead: the forward target answers 500, one attempt allowed. Then a clean shutdown.
    class Refuse(BaseHTTPRequestHandler):
        def do_POST(self):
            self.rfile.read(int(self.headers["Content-Length"]))
            self.send_response(500)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args):
            pass

    refuser = HTTPServer(("127.0.0.1", 0), Refuse)
    threading.Thread(target=refuser.serve_forever, daemon=True).start()
    proc, port = serve(binary, "http://127.0.0.1:%d/hook" % refuser.server_address[1])
    for body in DEAD:
        post(port, body)
    wait_for("two dead deliveries", lambda: len(os.listdir(os.path.join(DATA, "ledger", "dead"))) == 2)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=30) == 0

    # 2. Pending: the forward target takes each request and never answers; SIGKILL while it holds them.
    holder = socket.socket()
    holder.bind(("127.0.0.1", 0))
    holder.listen(16)
    held = []
    threading.Thread(target=lambda: [held.append(holder.accept()) for _ in range(len(PENDING))], daemon=True).start()
    proc, port = serve(binary, "http://127.0.0.1:%d/hook" % holder.getsockname()[1])
    for body in PENDING:
        post(port, body)
    wait_for("three forwards in flight", lambda: len(held) == len(PENDING))
    proc.kill()
    proc.wait()
    os.remove(os.path.join(HERE, "serve.log"))
    print("wrote", DATA)


if __name__ == "__main__":
    main()
