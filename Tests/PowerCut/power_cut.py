#!/usr/bin/env python3
"""Power-cut test of `kliq-webhooks serve`'s file store (run by PowerCutTests, or by hand):

    python3 Tests/PowerCut/power_cut.py PATH/TO/kliq-webhooks [--seconds-after-checkpoint 2]

1. Mounts `powercutfs.py` (FUSE; only what was fsynced survives a cut, syncfs does nothing) and runs
   `serve` with its data directory there, an `--exec` handler recording each event id outside it.
2. Four senders deliver signed events (10 jobs, later timestamps each round) until the journal's first
   segment has been checkpointed (deleted), and a little longer.
3. The power is cut: `serve` is SIGKILLed and the file system keeps only what was made durable.
4. `serve` starts again on what survived (a real file system), and the checks run:
   - every acknowledged event is in `events/`, byte for byte, and is answered `duplicate`;
   - no file in `events/`, `jobs/` or `ledger/` is empty or unparseable;
   - no job state went back: each job's stored state is at least its latest acknowledged event;
   - every acknowledged event reaches the handler (before the cut or after it).

Prints one line per finding and `power cut: N passed, M failed`; exits non-zero on any failure.
Loopback only; everything stops by itself (at most about 90 s).
"""
import hashlib
import hmac
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request

SECRET = "whsec_power_cut"
HERE = os.path.dirname(os.path.abspath(__file__))
JOBS = 10


def body(index):
    minute, second = divmod(index, 60)
    event = {"id": "evt_pc_%05d" % index, "type": "cv.job.completed" if index % 3 else "cv.job.created",
             "tenantId": "t_pc", "timestamp": "2026-11-20T%02d:%02d:%02dZ" % (minute // 60, minute % 60, second),
             "data": {"jobId": "job_pc_%d" % (index % JOBS), "observationId": "obs_%d" % index, "model": "shelf-detection-v2",
                      "status": "completed" if index % 3 else "queued",
                      "result": {"detections": [], "summary": {"totalProducts": index}} if index % 3 else None}}
    if event["data"]["result"] is None:
        del event["data"]["result"]
    return json.dumps(event, separators=(",", ":")).encode()


def post(port, payload, timeout=5):
    signature = hmac.new(SECRET.encode(), payload, hashlib.sha256).hexdigest()
    request = urllib.request.Request("http://127.0.0.1:%d/webhooks/kliq" % port, data=payload,
                                     headers={"X-Kliq-Signature": signature, "Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=timeout) as response:
        return json.load(response)["status"]


def start_serve(binary, data_dir, handled, log):
    process = subprocess.Popen([binary, "serve", "--port", "0", "--data-dir", data_dir, "--metrics-port", "off", "--admin-port", "off",
                                "--exec", 'echo "$KLIQ_EVENT_ID" >> "$HANDLED"'],
                               env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "KLIQ_WEBHOOK_SECRET": SECRET, "HANDLED": handled},
                               stdout=subprocess.PIPE, stderr=open(log, "ab"))
    deadline = time.time() + 60
    while time.time() < deadline:
        line = process.stdout.readline().decode()
        if "listening on http://127.0.0.1:" in line:
            return process, int(line.split("listening on http://127.0.0.1:")[1].split("/")[0])
        if not line and process.poll() is not None:
            break
    sys.exit("serve did not start; see " + log + ":\n" + open(log).read()[-2000:])


def mounted(path):
    with open("/proc/mounts") as f:
        return any(line.split()[1] == path for line in f)


def main():
    binary = os.path.abspath(sys.argv[1])
    after = float(sys.argv[sys.argv.index("--seconds-after-checkpoint") + 1]) if "--seconds-after-checkpoint" in sys.argv else 2.0
    work = tempfile.mkdtemp(prefix="kliq-power-cut-")
    mount = os.path.join(work, "mnt")
    survived = os.path.join(work, "survived")
    handled = os.path.join(work, "handled.txt")
    log = os.path.join(work, "serve.log")
    os.makedirs(mount)
    fs = subprocess.Popen([sys.executable, os.path.join(HERE, "powercutfs.py"), mount], stderr=open(os.path.join(work, "fs.log"), "ab"))
    serve = None
    passed = failed = 0

    def check(ok, what):
        nonlocal passed, failed
        if ok:
            passed += 1
        else:
            failed += 1
            if failed <= 20:
                print("FAILED:", what)
            elif failed == 21:
                print("FAILED: … (further failures counted, not printed)")

    try:
        deadline = time.time() + 20
        while not mounted(mount):
            if fs.poll() is not None or time.time() > deadline:
                sys.exit("powercutfs did not mount: " + open(os.path.join(work, "fs.log")).read()[-2000:])
            time.sleep(0.05)
        # The data directory exists durably before serve starts (as when an operator made it).
        os.mkdir(os.path.join(mount, "kliq-data"), 0o700)
        descriptor = os.open(mount, os.O_RDONLY)
        os.fsync(descriptor)
        os.close(descriptor)

        serve, port = start_serve(binary, os.path.join(mount, "kliq-data"), handled, log)
        acknowledged = {}
        sent = set()
        lock = threading.Lock()
        counter = iter(range(10 ** 6))
        stop = threading.Event()

        def sender():
            while not stop.is_set():
                with lock:
                    index = next(counter)
                    sent.add(index)
                try:
                    status = post(port, body(index))
                except (OSError, urllib.error.URLError, ValueError):
                    continue
                if status in ("accepted", "duplicate"):
                    with lock:
                        acknowledged[index] = status

        threads = [threading.Thread(target=sender) for _ in range(4)]
        for thread in threads:
            thread.start()
        first_segment = os.path.join(mount, "kliq-data", "journal", "0000000000000001.log")
        deadline = time.time() + 75
        while os.path.exists(first_segment) or not acknowledged:
            if time.time() > deadline:
                stop.set()
                sys.exit("no checkpoint within 75 s: is the journal checkpointed at all?")
            time.sleep(0.1)
        checkpointed = len(acknowledged)
        time.sleep(after)

        # The power cut: the process dies, and the file system keeps what was made durable.
        serve.kill()
        serve.wait()
        stop.set()
        for thread in threads:
            thread.join()
        with open(mount.rstrip("/") + ".cut", "w") as f:
            f.write(survived)
        fs.wait(timeout=60)
        print("power cut after %d acknowledged deliveries (%d before the first checkpoint), %d sent" % (len(acknowledged), checkpointed, len(sent)))

        data = os.path.join(survived, "kliq-data")

        def scan():
            """Files in events/, jobs/ and ledger/ that are empty or not whole JSON."""
            broken = []
            for sub in ["events", "jobs", "ledger/active", "ledger/done", "ledger/dead"]:
                folder = os.path.join(data, sub)
                for name in os.listdir(folder) if os.path.isdir(folder) else []:
                    with open(os.path.join(folder, name), "rb") as f:
                        content = f.read()
                    try:
                        json.loads(content)
                    except ValueError:
                        broken.append("%s/%s (%s)" % (sub, name, "empty" if not content else "cut short"))
            return broken

        # Files written since the last checkpoint may be empty or missing now: the journal has them.
        print("before recovery: %d files empty or cut short (the journal's un-checkpointed tail)" % len(scan()))
        serve, port = start_serve(binary, data, handled, log)
        # After start-up (journal replayed): every file is whole, every acknowledged event byte for byte.
        for broken in scan():
            check(False, "%s after recovery" % broken)
        for index in sorted(acknowledged):
            path = os.path.join(data, "events", "evt_pc_%05d.json" % index)
            stored = open(path, "rb").read() if os.path.exists(path) else None
            check(stored == body(index), "acknowledged evt_pc_%05d is %s after recovery" % (
                index, "missing" if stored is None else "empty" if not stored else "different"))
        for index in sorted(acknowledged):
            status = post(port, body(index))
            check(status == "duplicate", "acknowledged evt_pc_%05d answered %s after recovery" % (index, status))
        # The event index (events list --accepted) lists every acknowledged event, each under one number.
        listed = {}
        index_dir = os.path.join(data, "index")
        for name in sorted(os.listdir(index_dir)):
            if name.endswith(".log"):
                for line in open(os.path.join(index_dir, name)).read().split("\n"):
                    fields = line.split(" ")
                    if len(fields) == 3 and fields[0].isdigit():
                        listed.setdefault(fields[2], set()).add(int(fields[0]))
        for index in sorted(acknowledged):
            numbers = listed.get("evt_pc_%05d.json" % index, set())
            check(len(numbers) == 1, "acknowledged evt_pc_%05d is in index/ under %d sequence numbers" % (index, len(numbers)))
        # Deliveries in flight at the cut: either state is fine, but a duplicate must be backed by the event.
        for index in sorted(sent - set(acknowledged)):
            status = post(port, body(index))
            stored = open(os.path.join(data, "events", "evt_pc_%05d.json" % index), "rb").read()
            check(stored == body(index), "in-flight evt_pc_%05d answered %s but is not stored whole" % (index, status))
        for job in range(JOBS):
            latest = max((i for i in acknowledged if i % JOBS == job), default=None)
            if latest is None:
                continue
            path = os.path.join(data, "jobs", "job_pc_%d.json" % job)
            state = json.load(open(path)) if os.path.exists(path) else {}
            check(state.get("updatedAt", "") >= json.loads(body(latest))["timestamp"],
                  "job_pc_%d went back to %s; its latest acknowledged event is %s" % (job, state.get("updatedAt"), json.loads(body(latest))["timestamp"]))
        expected = {"evt_pc_%05d" % i for i in acknowledged}
        deadline = time.time() + 60
        seen = set()
        while time.time() < deadline:
            seen = set(open(handled).read().split()) if os.path.exists(handled) else set()
            if expected <= seen:
                break
            time.sleep(0.2)
        for missing in sorted(expected - seen):
            check(False, "acknowledged %s never reached its handler" % missing)
        check(expected <= seen, "")
        serve.send_signal(signal.SIGTERM)
        check(serve.wait(timeout=40) == 0, "serve did not exit cleanly after recovery")
        serve = None
    finally:
        if serve is not None and serve.poll() is None:
            serve.kill()
        if fs.poll() is None:
            fs.kill()
            subprocess.run(["fusermount3", "-u", "-z", mount], stderr=subprocess.DEVNULL)
    print("power cut: %d passed, %d failed" % (passed, failed))
    if failed == 0:
        shutil.rmtree(work, ignore_errors=True)
    else:
        print("left for inspection:", work)
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
