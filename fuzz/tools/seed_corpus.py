#!/usr/bin/env python3
"""Builds fuzz/corpus/<target>/seed-* from fixtures/ (real logs, see fixtures/README.md): a few dozen lines
per target, spread over each file, plus a few multi-line seeds (a target reads one record per line).
Files named crash-* are inputs that once crashed a normalizer; this script leaves them alone.
Run from the repo root: python3 fuzz/tools/seed_corpus.py"""
import hashlib
import json
import os

LINES = {
    "apache_combined": ["apache_combined/elastic-apache-head1000.log", "apache_combined/yauaa-hackers-head1500.log"],
    "linux_auth": ["linux_auth/loghub-linux-2k.log", "linux_auth/loghub-openssh-2k.log"],
    "cloudtrail": ["cloudtrail/stratus-detonations.ndjson", "cloudtrail/otrf-logstash-ec2-proxy-s3-exfil.ndjson"],
    "k8s_audit": ["k8s_audit/falco-scenarios.ndjson", "k8s_audit/fal_01_003-malformed.json"],
    "web_access_json": ["web_access/yauaa-hackers-head500.ndjson"],
    "okta": ["okta/panther-okta-systemlog.ndjson"],
    "github_audit": ["github_audit/panther-github-audit.ndjson"],
    "json": ["okta/panther-okta-systemlog.ndjson", "github_audit/panther-github-audit.ndjson",
             "web_access/yauaa-hackers-head500.ndjson"],
}
PER_TARGET = 30
MAX_BYTES = 4096


def spread(lines, n):
    lines = [l for l in lines if l.strip() and len(l) <= MAX_BYTES]
    if len(lines) <= n:
        return lines
    step = len(lines) / n
    return [lines[int(i * step)] for i in range(n)]


def write(target, data):
    d = os.path.join("fuzz/corpus", target)
    os.makedirs(d, exist_ok=True)
    name = "seed-" + hashlib.sha1(data).hexdigest()[:16]
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


for target, files in LINES.items():
    lines = []
    for f in files:
        with open(os.path.join("fixtures", f), "rb") as fh:
            lines.append(fh.read().split(b"\n"))
    per_file = max(1, (PER_TARGET - 4) // len(files))
    chosen = [l for ls in lines for l in spread(ls, per_file)]
    for l in chosen:
        write(target, l)
    # a few records in one input: the chunk's builder and scratch are reused
    for i in range(0, min(len(chosen), 12), 4):
        write(target, b"\n".join(chosen[i:i + 4]) + b"\n")

# scan: JSON documents as the pipeline splits them (envelopes, arrays, sequences), small ones whole
for f in ["cloudtrail/stratus-iam-create-admin-user.array.json", "k8s_audit/fal_01_003-malformed.json"]:
    with open(os.path.join("fixtures", f), "rb") as fh:
        write("scan", fh.read())
with open("fixtures/cloudtrail/invictus-20230710T1145Z.records.json", "rb") as fh:
    doc = json.loads(fh.read())
for i in range(0, 6, 2):
    write("scan", json.dumps({"Records": doc["Records"][i:i + 2]}).encode())
    write("scan", json.dumps(doc["Records"][i:i + 2], indent=2).encode())
with open("fixtures/k8s_audit/falco-scenarios.ndjson", "rb") as fh:
    events = [l for l in fh.read().split(b"\n") if l.strip()]
write("scan", b'{"kind":"EventList","items":[' + b",".join(events[:2]) + b"]}")
write("scan", events[3] + b"\n" + events[4])
for l in spread(events, 10):
    write("scan", l)
