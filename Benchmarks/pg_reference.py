#!/usr/bin/env python3
"""A small reference receiver on PostgreSQL, for BENCHMARKS.md: what a competent hand-written
receiver in Python does per delivery — verify the HMAC in constant time, read id/type/job from the
JSON, then one statement (insert the event ON CONFLICT DO NOTHING, upsert the job state only when
later) and commit — so kliq-webhooks' PostgreSQL store is measured against the same work.

usage: pg_reference.py PORT DATABASE_URL SCHEMA   (secret: KLIQ_WEBHOOK_SECRET)
needs: psycopg 3 (pip install "psycopg[binary]")
"""
import hashlib, hmac, json, os, sys, threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
import psycopg

PORT, URL, SCHEMA = int(sys.argv[1]), sys.argv[2], sys.argv[3]
SECRET = os.environ["KLIQ_WEBHOOK_SECRET"].encode()
local = threading.local()

with psycopg.connect(URL, autocommit=True) as setup:
    setup.execute(f'CREATE SCHEMA IF NOT EXISTS "{SCHEMA}"')
    setup.execute(f'CREATE TABLE IF NOT EXISTS "{SCHEMA}".events (id text PRIMARY KEY, type text NOT NULL, job_id text, body bytea NOT NULL, '
                  'signature text, accepted_at timestamptz NOT NULL DEFAULT clock_timestamp())')
    setup.execute(f'CREATE TABLE IF NOT EXISTS "{SCHEMA}".jobs (id text PRIMARY KEY, document bytea NOT NULL, updated_at text)')

STATEMENT = f'''
WITH new_event AS (
  INSERT INTO "{SCHEMA}".events (id, type, job_id, body, signature) VALUES (%s, %s, %s, %s, %s)
  ON CONFLICT (id) DO NOTHING RETURNING 1
), job AS (
  INSERT INTO "{SCHEMA}".jobs AS j (id, document, updated_at) SELECT %s, %s, %s WHERE %s::text IS NOT NULL
  ON CONFLICT (id) DO UPDATE SET document = EXCLUDED.document, updated_at = EXCLUDED.updated_at WHERE j.updated_at < EXCLUDED.updated_at
)
SELECT count(*) FROM new_event'''


def connection():
    if getattr(local, "db", None) is None:
        local.db = psycopg.connect(URL)
    return local.db


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def answer(self, status, payload):
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        signature = self.headers.get("X-Kliq-Signature", "")
        expected = hmac.new(SECRET, body, hashlib.sha256).hexdigest()
        if not hmac.compare_digest(signature.lower(), expected):
            return self.answer(401, {"error": "invalid_signature"})
        try:
            event = json.loads(body)
            event_id, event_type = event["id"], event["type"]
        except (ValueError, KeyError, TypeError):
            return self.answer(400, {"error": "malformed_payload"})
        data = event.get("data") if isinstance(event.get("data"), dict) else {}
        job_id = data.get("jobId") if event_type.startswith("cv.job.") else None
        db = connection()
        try:
            with db.cursor() as cursor:
                cursor.execute(STATEMENT, (event_id, event_type, job_id, body, signature,
                                           job_id, json.dumps(data).encode() if job_id else None, event.get("timestamp"), job_id))
                new = cursor.fetchone()[0] == 1
            db.commit()
        except psycopg.Error:
            db.rollback()
            return self.answer(503, {"error": "storage_unavailable"})
        self.answer(200, {"status": "accepted" if new else "duplicate", "eventId": event_id})


ThreadingHTTPServer.daemon_threads = True
ThreadingHTTPServer(("127.0.0.1", PORT), Handler).serve_forever()
