#!/usr/bin/env python3
"""Writes fixtures/sigma: for each Sigma rule vigil converts, one record it must match and one near miss
it must not, so that every converted rule fires at least once in the comparison with pySigma
(scripts/sigma-compare.py), whatever the shared datasets happen to hold.

    $(deploy/local/sigma.sh install) scripts/sigma-fixtures.py [--rules DIR] [--out fixtures/sigma]

How a record is made: the rule's detections as pySigma parses them (modifiers applied) give, per
detection, field values that satisfy it (the first value of a list, wildcards filled with nothing, all
values joined for `|all`); the smallest set of detections whose merged values make pySigma's SQLite
backend match the record is kept, laid over a plausible base record of the logsource (a CloudTrail event,
an audit event, an access-log line, a syslog line). The near miss changes one of those values so that
pySigma no longer matches. Records pySigma does not match (or still matches) are not written: pySigma
decides, not this script. fixtures/sigma/INDEX.md lists which line is for which rule.
"""

import argparse
import copy
import itertools
import json
import os
import sqlite3
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
oracle = __import__("sigma-oracle")

from sigma.backends.sqlite import sqliteBackend  # noqa: E402
from sigma.collection import SigmaCollection  # noqa: E402
from sigma.rule import SigmaDetection, SigmaDetectionItem  # noqa: E402
from sigma.types import (  # noqa: E402
    SigmaBool,
    SigmaCIDRExpression,
    SigmaExists,
    SigmaExpansion,
    SigmaFieldReference,
    SigmaNull,
    SigmaNumber,
    SigmaRegularExpression,
    SigmaString,
    SpecialChars,
)

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TIME = "2026-01-0{d}T0{h}:00:00Z"


def base(fmt, n):
    t = TIME.format(d=1 + n // 9 % 9, h=n % 9)
    if fmt == "cloudtrail":
        return {"eventVersion": "1.08", "userIdentity": {"type": "IAMUser", "arn": "arn:aws:iam::111122223333:user/fixture", "accountId": "111122223333", "userName": "fixture"},
                "eventTime": t, "eventSource": "fixture.amazonaws.com", "eventName": "FixtureEvent", "awsRegion": "us-east-1",
                "sourceIPAddress": "203.0.113.7", "userAgent": "fixture-agent", "requestParameters": None, "responseElements": None,
                "eventID": f"00000000-0000-4000-8000-{n:012d}", "eventType": "AwsApiCall", "recipientAccountId": "111122223333"}
    if fmt == "k8s_audit":
        return {"kind": "Event", "apiVersion": "audit.k8s.io/v1", "level": "Metadata", "auditID": f"00000000-0000-4000-8000-{n:012d}",
                "stage": "ResponseComplete", "requestURI": "/api/v1/namespaces/default/fixtures", "verb": "get",
                "user": {"username": "fixture"}, "sourceIPs": ["203.0.113.7"], "userAgent": "fixture-agent",
                "objectRef": {"resource": "fixtures", "namespace": "default"}, "responseStatus": {"code": 200},
                "requestReceivedTimestamp": t.replace("Z", ".000000Z"), "stageTimestamp": t.replace("Z", ".000000Z")}
    if fmt == "github_audit":
        return {"@timestamp": 1767225600000 + n * 1000, "action": "fixture.event", "actor": "fixture", "org": "fixture-org",
                "_document_id": f"fixture-{n}"}
    if fmt == "okta":
        return {"uuid": f"00000000-0000-4000-8000-{n:012d}", "published": t.replace("Z", ".000Z"), "eventType": "fixture.event",
                "version": "0", "severity": "INFO", "displayMessage": "Fixture event", "actor": {"id": "00u1", "type": "User", "alternateId": "fixture@example.com", "displayName": "Fixture"},
                "client": {"ipAddress": "203.0.113.7", "userAgent": {"rawUserAgent": "fixture-agent"}}, "outcome": {"result": "SUCCESS"}}
    if fmt == "web_access_json":
        return {"timestamp": t, "remote_addr": "203.0.113.7", "remote_user": "-", "method": "GET", "path": "/fixture",
                "protocol": "HTTP/1.1", "status": 200, "body_bytes_sent": 0, "http_referer": "-", "http_user_agent": "fixture-agent"}
    raise ValueError(fmt)


FORMAT_OF = {"aws.cloudtrail": "cloudtrail", "k8s.audit": "k8s_audit", "github.audit": "github_audit",
             "okta.system_log": "okta", "web.access": "web_access_json", "linux.auth": "linux_auth"}
WEB_FIELD = {"cs-method": "method", "c-method": "method", "cs-uri": "path", "c-uri": "path", "cs-uri-query": "path",
             "cs-uri-stem": "path", "c-uri-stem": "path", "c-useragent": "http_user_agent", "cs-user-agent": "http_user_agent",
             "cs(User-Agent)": "http_user_agent", "sc-status": "status", "cs-referer": "http_referer", "cs(Referer)": "http_referer",
             "cs-username": "remote_user", "cs-host": "host", "c-host": "host", "cs(Host)": "host"}


def text_of(value):
    """A string satisfying one pySigma value, or None (regular expressions and the like)."""
    if isinstance(value, SigmaExpansion):
        return text_of(value.values[0]) if value.values else None
    if isinstance(value, SigmaString):
        return "".join(p if isinstance(p, str) else ("" if p == SpecialChars.WILDCARD_MULTI else "x") for p in value.s)
    if isinstance(value, SigmaNumber):
        return str(value.number)
    if isinstance(value, SigmaBool):
        return "true" if value.boolean else "false"
    if isinstance(value, SigmaCIDRExpression):
        return str(value.network.network_address)
    if isinstance(value, SigmaExists):
        return "present" if value.exists else None
    return None


def assignments(det):
    """(fields, keywords) satisfying a detection: fields name -> text (None: absent)."""
    if isinstance(det, SigmaDetectionItem):
        vals = det.value
        if det.field is None:
            texts = [text_of(v) for v in vals]
            if any(t is None for t in texts):
                return None
            return ({}, texts if det.value_linking.__name__ == "ConditionAND" else texts[:1])
        if any(isinstance(v, SigmaNull) for v in vals[:1]):
            return ({det.field: None}, [])
        if isinstance(vals[0], SigmaFieldReference):
            return ({det.field: "same", vals[0].field: "same"}, [])
        if isinstance(vals[0], SigmaRegularExpression):
            return None
        texts = [text_of(v) for v in vals]
        if texts[0] is None and not (isinstance(vals[0], SigmaExists) and not vals[0].exists):
            return None
        if det.value_linking.__name__ == "ConditionAND":
            if any(t is None for t in texts):
                return None
            return ({det.field: "".join(texts)}, [])
        return ({det.field: texts[0]}, [])
    if isinstance(det, SigmaDetection):
        parts = [assignments(d) for d in det.detection_items]
        if det.item_linking.__name__ == "ConditionOR":
            parts = [p for p in parts if p is not None][:1]
            if not parts:
                return None
        if any(p is None for p in parts):
            return None
        fields, keywords = {}, []
        for f, k in parts:
            fields.update(f)
            keywords.extend(k)
        return (fields, keywords)
    return None


def set_path(record, dotted, value):
    steps = dotted.split(".")
    node = record
    for s in steps[:-1]:
        if not isinstance(node.get(s), dict):
            node[s] = {}
        node = node[s]
    if value is None:
        node.pop(steps[-1], None)
    else:
        node[steps[-1]] = value


def build(fmt, n, fields, keywords, program):
    if fmt == "linux_auth":
        if fields:
            return None
        return f"Jan  1 00:00:{n % 60:02d} fixture-host {program}[{1000 + n}]: " + " ".join(keywords)
    record = base(fmt, n)
    if fmt == "web_access_json":
        for name, value in fields.items():
            if name == "c-uri-extension":
                record["path"] = f"/fixture.{value}"
            elif name == "c-uri-query":
                record["path"] = f"/fixture?{value}"
            elif name in WEB_FIELD:
                if value is None:
                    record.pop(WEB_FIELD[name], None)
                else:
                    record[WEB_FIELD[name]] = int(value) if name == "sc-status" and value.isdigit() else value
            else:
                return None
        record["request"] = f"{record.get('method', 'GET')} {record.get('path', '/')} HTTP/1.1"
        if keywords:
            record["http_user_agent"] = (record.get("http_user_agent") or "") + " " + " ".join(keywords)
        return json.dumps(record)
    for name, value in fields.items():
        set_path(record, name, value)
    if keywords:
        record["fixtureText"] = " ".join(keywords)
    return json.dumps(record)


def matches(rule_yaml, line, fmt):
    """Whether pySigma's SQLite backend matches the one record `line`."""
    source = oracle.SOURCES[fmt]
    path = "/tmp/vigil-sigma-fixture-probe"
    with open(path, "w") as f:
        f.write(line + "\n")
    records = oracle.read_records([f"{fmt}:{path}"], set())
    collection = SigmaCollection.from_yaml(rule_yaml)
    rule = collection.rules[0]
    backend = sqliteBackend(table="logs", fulltext_field="fulltext")
    queries = backend.convert(collection)
    chosen = oracle.selected(rule.logsource, records)
    if not chosen:
        return False
    fields = sorted(set(backend.required_fields(rule)) - {"fulltext"})
    db = sqlite3.connect(":memory:")
    db.create_function("regexp", 2, oracle.regexp, deterministic=True)
    db.execute("CREATE TABLE logs (" + ", ".join(f'"{c}" TEXT COLLATE NOCASE' for c in ["_key", "fulltext"] + fields) + ")")
    db.executemany(f"INSERT INTO logs VALUES ({', '.join('?' * (2 + len(fields)))})",
                   [[r.key, r.text] + [oracle.field_value(r, fld) for fld in fields] for r in chosen])
    _ = source
    return any(db.execute(q).fetchone() for q in queries)


def perturb(value):
    if not value:
        return "near-miss"
    return "".join(chr(ord(c) ^ 1) if c.isalnum() else c for c in value)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--vigil", default=os.path.join(REPO, "target", "debug", "vigil"))
    ap.add_argument("--rules", default=os.path.join(os.path.dirname(REPO), "shared", "datasets", "sigma-rules"))
    ap.add_argument("--out", default=os.path.join(REPO, "fixtures", "sigma"))
    args = ap.parse_args()
    conv = subprocess.run([args.vigil, "sigma", "convert", "--json", args.rules], capture_output=True, text=True)
    rules = [json.loads(line) for line in conv.stdout.splitlines() if line.strip()]
    outputs = {}
    index = []
    n = 0
    for r in rules:
        if not r["converted"]:
            continue
        with open(r["path"]) as f:
            text = f.read()
        rule = SigmaCollection.from_yaml(text).rules[0]
        ls = rule.logsource
        source = {"product: aws, service: cloudtrail": "aws.cloudtrail"}.get(r["logsource"])
        fmt = None
        for src, fm in FORMAT_OF.items():
            probe = oracle.selected(ls, [type("R", (), {"source": src, "program": ls.service})()])
            if probe:
                fmt, source = fm, src
                break
        if fmt is None:
            continue
        program = ls.service if ls.service in ("sshd", "sudo", "su") else "fixture"
        dets = rule.detection.detections
        names = list(dets)
        sat = {name: assignments(d) for name, d in dets.items()}
        found = None
        for size in range(1, len(names) + 1):
            for subset in itertools.combinations(names, size):
                if any(sat[s] is None for s in subset):
                    continue
                fields, keywords = {}, []
                for s in subset:
                    fields.update(sat[s][0])
                    keywords.extend(sat[s][1])
                line = build(fmt, n, fields, keywords, program)
                if line is not None and matches(text, line, fmt):
                    found = (fields, keywords, line)
                    break
            if found:
                break
        rel = os.path.relpath(r["path"], args.rules)
        if not found:
            index.append(f"| {rel} | - | no record found (regular expressions or unsatisfiable values) |")
            continue
        fields, keywords, line = found
        name = {"linux_auth": "linux_auth.log", "web_access_json": "web_access.ndjson"}.get(fmt, f"{fmt}.ndjson")
        outputs.setdefault(name, []).append(line)
        index.append(f"| {rel} | {name}:{len(outputs[name])} | positive |")
        n += 1
        # near miss: one value changed
        for key in list(fields) + [None] * bool(keywords):
            f2, k2 = copy.deepcopy(fields), list(keywords)
            if key is None:
                k2 = [perturb(k) for k in k2]
            else:
                if f2[key] is None:
                    continue
                f2[key] = perturb(f2[key])
            miss = build(fmt, n, f2, k2, program)
            if miss is not None and not matches(text, miss, fmt):
                outputs[name].append(miss)
                index.append(f"| {rel} | {name}:{len(outputs[name])} | near miss (`{key or 'keywords'}` changed) |")
                n += 1
                break
    os.makedirs(args.out, exist_ok=True)
    for name, lines in outputs.items():
        with open(os.path.join(args.out, name), "w") as f:
            f.write("\n".join(lines) + "\n")
    with open(os.path.join(args.out, "INDEX.md"), "w") as f:
        f.write("# fixtures/sigma\n\nWritten by `scripts/sigma-fixtures.py` (see its docs) from the Sigma rules in "
                "`../shared/datasets/sigma-rules` (SigmaHQ, DRL-1.1): for each rule vigil converts, a record pySigma "
                "matches and a near miss it does not. Base records are made up (documentation addresses, "
                "account 111122223333); the field values come from each rule's detection.\n\n"
                "| rule | file:line | what |\n| --- | --- | --- |\n")
        f.write("\n".join(index) + "\n")
    print(f"{sum(len(v) for v in outputs.values())} records in {len(outputs)} files; {sum(1 for i in index if 'positive' in i)} rules with a positive record")


if __name__ == "__main__":
    main()
