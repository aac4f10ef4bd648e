#!/usr/bin/env python3
"""Runs a rule pack over the labelled real traces in ../shared/datasets and prints what it detects.

    scripts/detection-report.py [--vigil target/debug/vigil] [--rules pipelines/rules/soc2]
                                [--datasets ../shared/datasets] [--out /tmp/vigil-detection]

For each trace, `vigil run` archives it with the pack; alerts are joined to the input lines they name
(`events.ingest_offset` is the line number) and compared with the trace's ground truth:

- Stratus Red Team CloudTrail detonations (labels.csv: technique per line): techniques detected / missed.
- Kubernetes audit scenarios of Falco (labels.csv: scenario per auditID): scenarios detected / missed.
- loghub OpenSSH: addresses alerted by each rule against their failed-login counts.
- Web: the yauaa "hackers" log (every client is a bot, per its author) and the Elastic baseline (a normal
  site; its known probes for wp-login and admin pages are counted apart from other alerts).
- Panther rule-test events (labels.csv: expected verdict of one Panther rule per line) for the sources vigil
  normalizes: positives with an alert on their line / without; negatives with an alert. Panther's fixtures
  often carry no time at all; they get a fixed one (counted), since vigil dead-letters time-less events.

Markdown tables go to stdout; every run's evidence, alerts and dead letters stay under --out.
Needs only Python 3 and a built vigil.
"""

import argparse
import collections
import csv
import json
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def run_vigil(args, name, inputs, out):
    """Archives `inputs` ([(format, path, extra toml lines)]) with the pack; returns (alerts, line_of_event)."""
    work = out / name
    if work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True)
    config = ["[pipeline]", "threads = 2", ""]
    for fmt, path, extra in inputs:
        config += ["[[inputs]]", f'format = "{fmt}"', f'path = "{Path(path).resolve()}"', *extra, ""]
    config += [
        "[rules]",
        f'dirs = ["{Path(args.rules).resolve()}"]',
        "",
        "[evidence]",
        'url = "evidence"',
        "",
        "[alerts]",
        'path = "alerts.ndjson"',
        "",
        "[dead_letters]",
        'path = "dead_letters.ndjson"',
    ]
    (work / "pipeline.toml").write_text("\n".join(config) + "\n")
    subprocess.run(
        [args.vigil, "run", "--config", str(work / "pipeline.toml"), "--summary-json", str(work / "summary.json")],
        check=True,
        stdout=subprocess.DEVNULL,
    )
    alerts_file = work / "alerts.ndjson"
    alerts = [json.loads(line) for line in alerts_file.read_text().splitlines()] if alerts_file.exists() else []
    query = subprocess.run(
        [args.vigil, "query", "--evidence", str(work / "evidence"), "--format", "json",
         "SELECT event_id, ingest_offset FROM events"],
        check=True,
        capture_output=True,
        text=True,
    )
    line_of = {}
    for row in query.stdout.splitlines():
        r = json.loads(row)
        line_of[r["event_id"]] = r["ingest_offset"]  # one input per run: the line number is enough
    summary = json.loads((work / "summary.json").read_text())
    return alerts, line_of, summary


# Rules that give context (something new, something quiet) rather than detect an attack on their own.
CONTEXT = {"source_silence", "aws_first_user_agent_for_user", "aws_first_role_assumption", "okta_new_country_for_user"}


def lines_alerted(alerts, line_of, context=False):
    """{line: {rule ids}}, without the context rules unless `context`."""
    hit = collections.defaultdict(set)
    for a in alerts:
        if a["rule_id"] in CONTEXT and not context:
            continue
        for eid in a["event_ids"]:
            if eid in line_of:
                hit[line_of[eid]].add(a["rule_id"])
    return hit


def table(header, rows):
    out = ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
    out += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(out)


def stratus(args, ds, out):
    d = ds / "cloudtrail-stratus-detonations"
    alerts, line_of, _ = run_vigil(args, "stratus", [("cloudtrail", d / "cloudtrail.ndjson", [])], out)
    hit = lines_alerted(alerts, line_of, context=True)
    by_technique = collections.defaultdict(set)
    for row in csv.DictReader(open(d / "labels.csv")):
        rules = hit.get(int(row["line"]), set())
        by_technique[row["stratus_technique"]] |= rules
    # Stratus sets its own user agent, which attack_tool_user_agent knows: counted apart, as real
    # attackers rarely announce themselves. Context rules (first-seen, silence) are not detections.
    rows, found, by_ua = [], 0, 0
    for t in sorted(by_technique):
        rules = by_technique[t]
        specific = sorted(rules - CONTEXT - {"attack_tool_user_agent"})
        found += bool(specific)
        by_ua += bool(specific) or "attack_tool_user_agent" in rules
        rows.append([t, "detected" if specific else "missed", ", ".join(specific) or "-",
                     ", ".join(sorted(rules & (CONTEXT | {"attack_tool_user_agent"}))) or "-"])
    print(f"\n### Stratus Red Team CloudTrail detonations: {found} of {len(by_technique)} techniques by specific "
          f"rules ({by_ua} counting the attack-tool user agent)\n")
    print(table(["technique", "result", "specific rules", "user-agent and context rules (not counted)"], rows))


def k8s(args, ds, out):
    d = ds / "k8s-audit-falco"
    alerts, line_of, _ = run_vigil(args, "k8s", [("k8s_audit", d / "k8s_audit.ndjson", [])], out)
    hit = lines_alerted(alerts, line_of)
    # Scenario per auditID (several scenarios share some IDs: the label names both).
    audit_of_line = {}
    for n, line in enumerate(open(d / "k8s_audit.ndjson"), 1):
        if line.strip():
            audit_of_line[n] = json.loads(line).get("auditID")
    rules_of_audit = collections.defaultdict(set)
    for n, rules in hit.items():
        rules_of_audit[audit_of_line.get(n)] |= rules
    scenarios = collections.defaultdict(set)
    for row in csv.DictReader(open(d / "labels.csv")):
        scenarios[row["scenario_file"]] |= rules_of_audit.get(row["auditID"], set())
    rows = [[s, ", ".join(sorted(r)) or "-"] for s, r in sorted(scenarios.items())]
    fired = sum(1 for r in scenarios.values() if r)
    print(f"\n### Kubernetes audit (Falco scenarios): alerts on {fired} of {len(scenarios)} scenarios\n")
    print("Not every scenario is an attack (the set includes benign controls such as unprivileged pods). "
          "Context rules (silence, first-seen) are left out.\n")
    print(table(["scenario", "rules alerting"], rows))


def openssh(args, ds, out):
    d = ds / "loghub-ssh-linux"
    log = d / "OpenSSH_2k.log"
    alerts, line_of, _ = run_vigil(args, "openssh", [("linux_auth", log, ["year = 2017"])], out)
    failures = collections.Counter()
    accepted = set()
    import re
    for line in open(log, errors="replace"):
        m = re.search(r"(Failed password|Invalid user|authentication failure).*?(?:from|rhost=)\s*(\d+\.\d+\.\d+\.\d+)", line)
        if m:
            failures[m.group(2)] += 1
        m = re.search(r"Accepted \w+ for \S+ from (\d+\.\d+\.\d+\.\d+)", line)
        if m:
            accepted.add(m.group(1))
    by_rule = collections.defaultdict(set)
    for a in alerts:
        ip = a["fields"].get("src_ip")
        by_rule[a["rule_id"]].add(ip)
    count = collections.Counter(a["rule_id"] for a in alerts)
    rows = []
    for rule, ips in sorted(by_rule.items()):
        fewest = min(failures.get(ip, 0) for ip in ips) if ips else 0
        rows.append([rule, count[rule], len(ips), fewest])
    print("\n### loghub OpenSSH (2,000 lines, one server under attack)\n")
    print(f"{len(failures)} addresses failed to log in; {sum(1 for n in failures.values() if n >= 10)} of them 10 times "
          f"or more; {len(accepted)} address(es) logged in ({len(accepted & set(failures))} after failing).\n")
    print(table(["rule", "alerts", "addresses", "fewest failures of an alerted address"], rows))


def web(args, ds, out):
    hackers = ds / "web-access-yauaa-hackers" / "hackers-access.log"
    base = ds / "web-access-elastic-examples" / "apache_logs"
    print("\n### Web access logs\n")
    rows = []
    for name, path in [("yauaa hackers (every client a bot)", hackers), ("Elastic baseline (normal site)", base)]:
        alerts, line_of, _ = run_vigil(args, name.split()[0], [("apache_combined", path, [])], out)
        ips_total = {l.split(" ", 1)[0] for l in open(path, errors="replace") if l.strip()}
        lines = open(path, errors="replace").read().splitlines()
        by_rule = collections.defaultdict(lambda: [0, set(), 0])
        for a in alerts:
            r = by_rule[a["rule_id"]]
            r[0] += 1
            r[1].add(a["fields"].get("src_ip"))
            # Known probes of the baseline: wp-login, wp-admin, administrator and admin.php requests.
            named = [lines[line_of[e] - 1] for e in a["event_ids"] if e in line_of]
            if any(p in l for l in named for p in ("wp-login", "wp-admin", "/administrator", "admin.php")):
                r[2] += 1
        for rule, (n, ips, probes) in sorted(by_rule.items()):
            rows.append([name, rule, n, f"{len(ips)} of {len(ips_total)}", probes])
        if not by_rule:
            rows.append([name, "-", 0, f"0 of {len(ips_total)}", 0])
    print(table(["log", "rule", "alerts", "client addresses alerted", "alerts on known wp-login/admin probes"], rows))


PANTHER = [
    # folder, vigil format, time field to give a time-less fixture
    ("aws_cloudtrail", "cloudtrail", "eventTime"),
    ("k8s_eks_audit", "k8s_audit", "requestReceivedTimestamp"),
    ("okta_systemlog", "okta", "published"),
    ("github_audit", "github_audit", "@timestamp"),
]
TIME_KEYS = {"eventTime", "requestReceivedTimestamp", "stageTimestamp", "published", "p_event_time",
             "@timestamp", "created_at", "timestamp"}


def panther(args, ds, out):
    print("\n### Panther rule-test events (per source; context rules such as silence and first-seen left out)\n")
    print("A positive is a line Panther's rule must flag; detected = some vigil rule alerts naming that line. "
          "A negative alerted is a line Panther's rule must not flag on which some vigil rule alerts (not "
          "always wrong: another rule may rightly fire on it).\n")
    rows, detail = [], []
    for folder, fmt, time_key in PANTHER:
        d = ds / "panther-rule-tests" / folder
        src = out / f"panther-{folder}.ndjson"
        src.parent.mkdir(parents=True, exist_ok=True)
        given = 0
        with open(src, "w") as f:
            for n, line in enumerate(open(d / "events.ndjson"), 1):
                event = json.loads(line)
                if not any(k in event for k in TIME_KEYS):
                    event[time_key] = f"2024-01-01T00:{n // 60 % 60:02d}:{n % 60:02d}Z"
                    given += 1
                f.write(json.dumps(event) + "\n")
        alerts, line_of, summary = run_vigil(args, f"panther-{folder}", [(fmt, src, [])], out)
        hit = lines_alerted(alerts, line_of)
        pos_hit = pos = neg = neg_hit = 0
        per_rule = collections.defaultdict(lambda: [0, 0, set()])
        for row in csv.DictReader(open(d / "labels.csv")):
            rules = hit.get(int(row["line"]), set())
            expected = row["expected_result"] == "True"
            if expected:
                pos += 1
                pos_hit += bool(rules)
                r = per_rule[row["rule_id"]]
                r[0] += 1
                r[1] += bool(rules)
                r[2] |= rules
            else:
                neg += 1
                neg_hit += bool(rules)
        dead = sum(i.get("dead_letters", 0) for i in summary.get("inputs", []))
        rows.append([folder, pos, pos_hit, pos - pos_hit, neg, neg_hit, given, dead])
        for rule_id, (n, found, rules) in sorted(per_rule.items()):
            detail.append([folder, rule_id, f"{found}/{n}", ", ".join(sorted(rules)) or "-"])
    print(table(["source", "positives", "detected", "missed", "negatives", "negatives alerted",
                 "time given", "dead-lettered"], rows))
    print("\nPer Panther rule (positives detected / positives, and by which vigil rules):\n")
    print(table(["source", "Panther rule", "detected", "vigil rules"], detail))


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--vigil", default=str(REPO / "target" / "debug" / "vigil"))
    p.add_argument("--rules", default=str(REPO / "pipelines" / "rules" / "soc2"))
    p.add_argument("--datasets", default=str(REPO.parent / "shared" / "datasets"))
    p.add_argument("--out", default="/tmp/vigil-detection")
    p.add_argument("--only", choices=["stratus", "k8s", "openssh", "web", "panther"], action="append")
    args = p.parse_args()
    ds, out = Path(args.datasets), Path(args.out)
    if not Path(args.vigil).exists():
        sys.exit(f"{args.vigil} does not exist: build it first (cargo build -p vigil-cli)")
    if not ds.is_dir():
        sys.exit(f"{ds} is not a directory: pass --datasets")
    for step in args.only or ["stratus", "k8s", "openssh", "web", "panther"]:
        globals()[step](args, ds, out)


if __name__ == "__main__":
    main()
