#!/usr/bin/env python3
"""vigil's Sigma conversion against pySigma: for every Sigma rule vigil converts, the records it matches
over the shared datasets and fixtures/sigma must be exactly the records pySigma's SQLite backend matches.

    scripts/sigma-compare.py [--vigil target/debug/vigil] [--rules DIR ...] [--work DIR] [--json OUT]

Run it with the python of deploy/local/sigma.sh (it runs scripts/sigma-oracle.py, which needs pySigma):
    $(deploy/local/sigma.sh install) scripts/sigma-compare.py

1. `vigil sigma convert --json` over the rule directories (default: ../shared/datasets/sigma-rules):
   which rules convert, which are refused and why.
2. One `vigil run` with every converted rule in one rule directory over all the inputs (CloudTrail,
   Kubernetes audit, GitHub audit, Okta, access logs, syslog lines from the datasets, plus fixtures/sigma).
3. One oracle run over the same inputs, leaving out the records vigil dead-lettered.
4. Per rule, vigil's matched event ids (its alerts) against the oracle's; a coverage table per logsource:
   rules, converted, refused (by reason), fired (matched at least one record), equal to the oracle,
   different (must be 0).
   Correlation rules (default rule directories also hold fixtures/sigma/correlations/rules) are compared
   window by window: every window vigil alerts on (group, start, end, event ids) against every window
   the backend's correlation compiler reports, over the event times vigil archived (`vigil query`).
   Rules that a correlation references (without `generate: true`) alert only through it: they are
   counted as `in a correlation`, not compared alone.
Exit 0 when no converted rule differs, 1 otherwise (and 2 when something could not run).
"""

import argparse
import collections
import json
import os
import shutil
import subprocess
import sys
import tempfile

import yaml

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DATASETS = os.path.join(os.path.dirname(REPO), "shared", "datasets")

# (format, path relative to the datasets folder): the records vigil and the oracle both read.
DATASET_INPUTS = [
    ("cloudtrail", "cloudtrail-invictus-stratus/cloudtrail.ndjson"),
    ("cloudtrail", "cloudtrail-stratus-detonations/cloudtrail.ndjson"),
    ("cloudtrail", "panther-rule-tests/aws_cloudtrail/events.ndjson"),
    ("k8s_audit", "k8s-audit-falco/k8s_audit.ndjson"),
    ("k8s_audit", "panther-rule-tests/k8s_eks_audit/events.ndjson"),
    ("github_audit", "panther-rule-tests/github_audit/events.ndjson"),
    ("okta", "panther-rule-tests/okta_systemlog/events.ndjson"),
    ("web_access_json", "web-access-elastic-examples/apache_logs.ndjson"),
    ("web_access_json", "web-access-yauaa-hackers/hackers-access.ndjson"),
]
# Syslog lines kept as `raw` in NDJSON: written out as text files for linux_auth.
SYSLOG_INPUTS = [
    "loghub-ssh-linux/openssh_2k.ndjson",
    "loghub-ssh-linux/linux_2k.ndjson",
    "fail2ban-labeled-lines/labeled_lines.ndjson",
    "wazuh-ruleset-tests/labeled_lines.ndjson",
]
FIXTURES = {
    "cloudtrail.ndjson": "cloudtrail",
    "k8s_audit.ndjson": "k8s_audit",
    "github_audit.ndjson": "github_audit",
    "okta.ndjson": "okta",
    "web_access.ndjson": "web_access_json",
    "linux_auth.log": "linux_auth",
    # written by hand (fixtures/sigma/HANDWRITTEN.md)
    "cloudtrail.handwritten.ndjson": "cloudtrail",
    "okta.handwritten.ndjson": "okta",
    "web_access.handwritten.ndjson": "web_access_json",
    # made for the correlation rules of correlations/rules (correlations/make_events.py)
    "correlations/cloudtrail.ndjson": "cloudtrail",
    "correlations/okta.ndjson": "okta",
}


def logsource_label(path):
    try:
        with open(path) as f:
            doc = yaml.safe_load(f)
        ls = doc.get("logsource") or {}
    except Exception:
        return "(unreadable)"
    if "correlation" in doc:
        return "correlation"
    return ", ".join(f"{k}: {ls[k]}" for k in ("product", "service", "category") if ls.get(k))


def group_by(sql):
    """The group-by fields of a converted correlation (its `-- key:` header line)."""
    for line in sql.splitlines():
        if line.startswith("-- key: "):
            return [k.strip() for k in line[len("-- key: "):].split(",") if k.strip()]
    return []


def ascii_lower(value):
    """Sigma's (SQLite's) case folding of a group value: ASCII letters only."""
    if value is None:
        return None
    text = value if isinstance(value, str) else json.dumps(value)
    return "".join(chr(ord(c) + 32) if "A" <= c <= "Z" else c for c in text)


def micros(rfc3339):
    """UTC microseconds of vigil's RFC 3339 time text."""
    from datetime import datetime, timezone

    t = datetime.fromisoformat(rfc3339.replace("Z", "+00:00"))
    delta = t - datetime(1970, 1, 1, tzinfo=timezone.utc)
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--vigil", default=os.path.join(REPO, "target", "debug", "vigil"))
    ap.add_argument("--rules", action="append", default=[])
    ap.add_argument("--datasets", default=DATASETS)
    ap.add_argument("--fixtures", default=os.path.join(REPO, "fixtures", "sigma"))
    ap.add_argument("--work", default=None)
    ap.add_argument("--json", default=None, help="write the per-rule results here")
    args = ap.parse_args()
    rule_dirs = args.rules or [
        os.path.join(args.datasets, "sigma-rules"),
        os.path.join(args.fixtures, "correlations", "rules"),
    ]
    work = args.work or tempfile.mkdtemp(prefix="vigil-sigma-")
    os.makedirs(work, exist_ok=True)

    # 1. conversion
    conv = subprocess.run([args.vigil, "sigma", "convert", "--json", *rule_dirs], capture_output=True, text=True)
    if conv.returncode not in (0, 2):
        print(conv.stderr, file=sys.stderr)
        return 2
    rules = [json.loads(line) for line in conv.stdout.splitlines() if line.strip()]
    rule_dir = os.path.join(work, "rules")
    shutil.rmtree(rule_dir, ignore_errors=True)
    os.makedirs(rule_dir)
    by_id = {}
    for r in rules:
        r["label"] = ("correlation: " + r["correlation"]) if r.get("correlation") else (r.get("logsource") or logsource_label(r["path"]))
        if r["converted"]:
            if r["id"] in by_id:
                print(f"two converted rules have the id {r['id']}: {r['path']} and {by_id[r['id']]['path']}", file=sys.stderr)
                return 2
            by_id[r["id"]] = r
            for path in [r["path"]] + r.get("uses", []):
                shutil.copy(path, os.path.join(rule_dir, os.path.basename(path)))
    converted_list = os.path.join(work, "converted.jsonl")
    with open(converted_list, "w") as f:
        for r in rules:
            if r["converted"] and r.get("standalone", True):
                f.write(json.dumps({k: r.get(k) for k in ("path", "line", "sigma_id", "title", "correlation", "uses")}) + "\n")

    # 2. inputs
    inputs = []
    for fmt, rel in DATASET_INPUTS:
        path = os.path.join(args.datasets, rel)
        if os.path.exists(path):
            inputs.append((fmt, path))
    for i, rel in enumerate(SYSLOG_INPUTS):
        path = os.path.join(args.datasets, rel)
        if not os.path.exists(path):
            continue
        out = os.path.join(work, f"syslog-{i}.log")
        with open(path) as src, open(out, "w") as dst:
            for line in src:
                raw = json.loads(line).get("raw")
                if isinstance(raw, str) and "\n" not in raw and raw.strip():
                    dst.write(raw + "\n")
        inputs.append(("linux_auth", out))
    for name, fmt in FIXTURES.items():
        path = os.path.join(args.fixtures, name)
        if os.path.exists(path):
            inputs.append((fmt, path))

    # 3. vigil, once, every converted rule
    for name in ("evidence", "alerts.ndjson", "dlq.ndjson"):
        target = os.path.join(work, name)
        shutil.rmtree(target, ignore_errors=True) if os.path.isdir(target) else (os.path.exists(target) and os.remove(target))
    cmd = [args.vigil, "run", "--no-progress", "--rules", rule_dir, "--evidence", os.path.join(work, "evidence"),
           "--alerts", os.path.join(work, "alerts.ndjson"), "--dlq", os.path.join(work, "dlq.ndjson")]
    for fmt, path in inputs:
        cmd += ["--input", f"{fmt}:{path}"]
    run = subprocess.run(cmd, capture_output=True, text=True)
    if run.returncode not in (0, 1):
        print(run.stdout[-3000:], run.stderr[-3000:], file=sys.stderr)
        return 2
    vigil_matches = collections.defaultdict(set)
    vigil_windows = collections.defaultdict(set)
    capped = set()
    sigma_meta_ok = True
    with open(os.path.join(work, "alerts.ndjson")) as f:
        for line in f:
            a = json.loads(line)
            if a["rule_id"] in by_id:
                vigil_matches[a["rule_id"]].update(a["event_ids"])
                meta = by_id[a["rule_id"]]
                if meta.get("correlation"):
                    fields = a["fields"]
                    if fields.get("event_ids_capped"):
                        capped.add(a["rule_id"])
                    group = {g: ascii_lower(fields.get(g)) for g in group_by(meta["sql"])}
                    vigil_windows[a["rule_id"]].add((
                        json.dumps(group, sort_keys=True),
                        micros(fields["window_start"]),
                        micros(a["time"]),
                        tuple(sorted(a["event_ids"])),
                    ))
                src = a.get("source_rule") or {}
                meta = by_id[a["rule_id"]]
                if src.get("format") != "sigma" or src.get("id") != meta.get("sigma_id") or "author" not in src:
                    sigma_meta_ok = False

    # 4. the oracle, once (correlations over the event times vigil archived)
    times = os.path.join(work, "times.jsonl")
    query = subprocess.run(
        [args.vigil, "query", "--evidence", os.path.join(work, "evidence"), "--format", "json",
         "SELECT event_id, CAST(time AS BIGINT) AS time_us FROM events"],
        capture_output=True, text=True)
    if query.returncode != 0:
        print(query.stderr[-3000:], file=sys.stderr)
        return 2
    with open(times, "w") as f:
        f.write(query.stdout)
    oracle_cmd = [sys.executable, os.path.join(REPO, "scripts", "sigma-oracle.py"), "--rules", converted_list, "--times", times]
    for fmt, path in inputs:
        oracle_cmd += ["--input", f"{fmt}:{path}"]
    dlq = os.path.join(work, "dlq.ndjson")
    if os.path.exists(dlq):
        oracle_cmd += ["--exclude-dlq", dlq]
    oracle = subprocess.run(oracle_cmd, capture_output=True, text=True)
    if oracle.returncode != 0:
        print(oracle.stderr[-3000:], file=sys.stderr)
        return 2
    oracle_by_path = {}
    for line in oracle.stdout.splitlines():
        o = json.loads(line)
        oracle_by_path[(o["path"], o.get("line"))] = o

    # 5. compare
    table = collections.OrderedDict()
    results = []
    for r in sorted(rules, key=lambda r: (r["label"], r["path"])):
        row = table.setdefault(r["label"], collections.Counter())
        row["rules"] += 1
        if not r["converted"]:
            row["refused"] += 1
            row["refused:" + r["kind"]] += 1
            results.append({"path": r["path"], "converted": False, "kind": r["kind"], "reason": r["reason"], "line": r["line"]})
            continue
        row["converted"] += 1
        if not r.get("standalone", True):
            row["in a correlation"] += 1
            results.append({"path": r["path"], "id": r["id"], "converted": True, "in_correlation": True})
            continue
        o = oracle_by_path.get((r["path"], r.get("line")), {"error": "no oracle output"})
        mine = vigil_matches.get(r["id"], set())
        res = {"path": r["path"], "id": r["id"], "converted": True, "vigil": len(mine)}
        if r.get("correlation"):
            res["correlation"] = r["correlation"]
        if "error" in o:
            row["oracle error"] += 1
            res["oracle_error"] = o["error"]
        elif r.get("correlation"):
            theirs = {(json.dumps(g, sort_keys=True), s, e, tuple(ids)) for g, s, e, ids in o["windows"]}
            mine_windows = vigil_windows.get(r["id"], set())
            if r["id"] in capped:  # an alert names at most 1,000 ids: compare the windows alone
                theirs = {w[:3] for w in theirs}
                mine_windows = {w[:3] for w in mine_windows}
            res["vigil"], res["oracle"] = len(mine_windows), len(theirs)
            if mine_windows == theirs:
                row["equal"] += 1
                if mine_windows:
                    row["fired"] += 1
            else:
                row["different"] += 1
                res["only_vigil"] = sorted(mine_windows - theirs)[:5]
                res["only_oracle"] = sorted(theirs - mine_windows)[:5]
        else:
            theirs = set(o["matched"])
            res["oracle"] = len(theirs)
            if mine == theirs:
                row["equal"] += 1
                if mine:
                    row["fired"] += 1
            else:
                row["different"] += 1
                res["only_vigil"] = sorted(mine - theirs)[:5]
                res["only_oracle"] = sorted(theirs - mine)[:5]
                res["query"] = o.get("query")
        results.append(res)

    reasons = sorted({k for row in table.values() for k in row if k.startswith("refused:")})
    print(f"Sigma rules in {', '.join(rule_dirs)}; {sum(1 for _ in inputs)} inputs; vigil alerts carry the Sigma id/author: {'yes' if sigma_meta_ok else 'NO'}")
    header = ["logsource", "rules", "converted", "refused"] + [f"refused: {k.split(':', 1)[1]}" for k in reasons] + ["in a correlation", "fired", "equal to pySigma", "different", "oracle error"]
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    total = collections.Counter()
    for label, row in table.items():
        total.update(row)
        cells = [label, row["rules"], row["converted"], row["refused"]] + [row[k] for k in reasons] + [row["in a correlation"], row["fired"], row["equal"], row["different"], row["oracle error"]]
        print("| " + " | ".join(str(c) for c in cells) + " |")
    cells = ["**all**", total["rules"], total["converted"], total["refused"]] + [total[k] for k in reasons] + [total["in a correlation"], total["fired"], total["equal"], total["different"], total["oracle error"]]
    print("| " + " | ".join(str(c) for c in cells) + " |")
    for res in results:
        if "only_vigil" in res or "oracle_error" in res:
            print(json.dumps(res), file=sys.stderr)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"table": {k: dict(v) for k, v in table.items()}, "rules": results, "sigma_meta_ok": sigma_meta_ok}, f, indent=1)
    return 0 if total["different"] == 0 and sigma_meta_ok else 1


if __name__ == "__main__":
    sys.exit(main())
