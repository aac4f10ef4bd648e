#!/usr/bin/env python3
"""Compares two runs of a rule pack over the Invictus CloudTrail attack trace (before and after a change
such as grouping): alerts per rule, rules that fire, and whether every attack technique of the trace's
ground truth (its SOURCE.md) and every Stratus Red Team detonation (one `stratus-red-team_<uuid>` user
agent each) is still named by an alert.

    scripts/alert-reduction.py --before-rules DIR --after-rules DIR [--vigil target/debug/vigil]
        [--trace ../shared/datasets/cloudtrail-invictus-stratus/cloudtrail.ndjson] [--out /tmp/vigil-reduction]

A technique counts as detected when an alert names (event_ids) one of its events. Prints Markdown;
exits 1 when something detected before is not after. Needs only Python 3 and a built vigil.
"""

import argparse
import collections
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

# Ground truth of the trace (SOURCE.md of cloudtrail-invictus-stratus): technique -> (eventName, time prefix).
TECHNIQUES = {
    "iam-create-admin-user": [("CreateUser", "2023-07-10T12:24:49"), ("AttachUserPolicy", "2023-07-10T12:24:49")],
    "iam-backdoor-user": [("CreateAccessKey", "2023-07-10T12:24:29")],
    "iam-create-user-login-profile": [("CreateLoginProfile", "2023-07-10T12:25:04")],
    "console-login-without-mfa": [("ConsoleLogin", "2023-07-10T12:23:15")],
    "iam-backdoor-role": [("UpdateAssumeRolePolicy", "2023-07-10T12:24:11")],
    "lambda-backdoor-function": [("AddPermission20150331v2", "2023-07-10T12:25:40")],
    "lambda-overwrite-code": [("UpdateFunctionCode20150331v2", "2023-07-10T12:26:56")],
    "rolesanywhere-create-trust-anchor": [("CreateTrustAnchor", "2023-07-10T12:27:13")],
    "cloudtrail-delete": [("DeleteTrail", "2023-07-10T11:59:02")],
    "cloudtrail-stop": [("StopLogging", "2023-07-10T12:0")],
    "cloudtrail-event-selectors": [("PutEventSelectors", "2023-07-10T12:00:08")],
    "cloudtrail-lifecycle-rule": [("PutBucketLifecycle", "2023-07-10T12:00:35")],
    "vpc-remove-flow-logs": [("DeleteFlowLogs", "2023-07-10T12:02:26")],
    "organizations-leave": [("LeaveOrganization", "2023-07-10T12:02:05")],
    "ec2-get-password-data": [("GetPasswordData", "2023-07-10T11:5")],
    "secretsmanager-retrieve-secrets": [("GetSecretValue", "2023-07-10T11:57:5")],
    "ssm-retrieve-securestring-parameters": [("GetParameters", "2023-07-10T11:58:2")],
    "ec2-steal-instance-credentials": [("SendCommand", "2023-07-10T11:57:16")],
    "ec2-download-user-data": [("DescribeInstanceAttribute", "2023-07-10T12:0")],
    "ec2-launch-unusual-instances": [("RunInstances", "2023-07-10T12:0")],
    "ec2-security-group-open-port-22-ingress": [("AuthorizeSecurityGroupIngress", "2023-07-10T12:10:08")],
    "ec2-share-ami": [("ModifyImageAttribute", "2023-07-10T12:11:01")],
    "ec2-share-ebs-snapshot": [("ModifySnapshotAttribute", "2023-07-10T12:11:28")],
    "rds-share-snapshot": [("ModifyDBSnapshotAttribute", "2023-07-10T12:22:06")],
    "s3-backdoor-bucket-policy": [("PutBucketPolicy", "2023-07-10T12:22:41")],
}


def run(vigil, rules, trace, out):
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    subprocess.run(
        [vigil, "run", "--no-progress", "-i", f"cloudtrail:{trace}", "-r", str(rules), "--evidence", str(out / "ev"),
         "--alerts", str(out / "alerts.ndjson")],
        check=True, capture_output=True,
    )
    alerts = [json.loads(l) for l in (out / "alerts.ndjson").read_text().splitlines() if l.strip()]
    rows = subprocess.run(
        [vigil, "query", "--evidence", str(out / "ev"), "--format", "json",
         "SELECT event_id, ingest_offset FROM events"],
        check=True, capture_output=True, text=True,
    ).stdout
    line_of = {r["event_id"]: r["ingest_offset"] for r in map(json.loads, rows.splitlines())}
    return alerts, line_of


def detected(alerts, line_of, records):
    """(techniques detected, detonation uuids detected, lines named)."""
    lines = {line_of[e] for a in alerts for e in a["event_ids"] if e in line_of}
    techniques = set()
    for name, events in TECHNIQUES.items():
        for line in lines:
            r = records[line - 1]
            if any(r.get("eventName") == ev and r.get("eventTime", "").startswith(t) for ev, t in events):
                techniques.add(name)
    uuids = set()
    for line in lines:
        m = re.search(r"stratus-red-team_([0-9a-f-]{36})", records[line - 1].get("userAgent", ""))
        if m:
            uuids.add(m.group(1))
    return techniques, uuids, lines


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--vigil", default=str(REPO / "target/debug/vigil"))
    p.add_argument("--before-rules", required=True)
    p.add_argument("--after-rules", required=True)
    p.add_argument("--trace", default=str(REPO.parent / "shared/datasets/cloudtrail-invictus-stratus/cloudtrail.ndjson"))
    p.add_argument("--out", default="/tmp/vigil-reduction")
    args = p.parse_args()
    records = [json.loads(l) for l in Path(args.trace).read_text().splitlines() if l.strip()]
    out = Path(args.out)
    results = {}
    for name, rules in (("before", args.before_rules), ("after", args.after_rules)):
        alerts, line_of = run(args.vigil, rules, args.trace, out / name)
        results[name] = (alerts, *detected(alerts, line_of, records))
    (b_alerts, b_tech, b_uuid, b_lines), (a_alerts, a_tech, a_uuid, a_lines) = results["before"], results["after"]
    b_rules = collections.Counter(a["rule_id"] for a in b_alerts)
    a_rules = collections.Counter(a["rule_id"] for a in a_alerts)
    print(f"| | before | after |\n| --- | --- | --- |")
    print(f"| alerts | {len(b_alerts):,} | {len(a_alerts):,} |")
    print(f"| rules that fire | {len(b_rules)} | {len(a_rules)} |")
    print(f"| ground-truth techniques named by an alert (of {len(TECHNIQUES)}) | {len(b_tech)} | {len(a_tech)} |")
    print(f"| Stratus detonations (user-agent uuids) named by an alert | {len(b_uuid)} | {len(a_uuid)} |")
    print(f"| trace lines named by an alert | {len(b_lines):,} | {len(a_lines):,} |")
    print("\n| rule | before | after |\n| --- | --- | --- |")
    for rule in sorted(set(b_rules) | set(a_rules), key=lambda r: (-b_rules[r], r)):
        if b_rules[rule] != a_rules[rule]:
            print(f"| {rule} | {b_rules[rule]:,} | {a_rules[rule]:,} |")
    lost = {"rules": sorted(set(b_rules) - set(a_rules)), "techniques": sorted(b_tech - a_tech),
            "detonations": sorted(b_uuid - a_uuid)}
    print(f"\nlost: {json.dumps(lost)}")
    print(f"techniques not detected before either: {sorted(set(TECHNIQUES) - b_tech)}")
    return 1 if any(lost.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
