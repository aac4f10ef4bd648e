#!/usr/bin/env python3
"""The independent Sigma evaluator vigil's Sigma conversion is checked against: pySigma with its SQLite
backend (installed by deploy/local/sigma.sh), over the same records vigil reads.

    sigma-oracle.py --rules LIST --input FORMAT:PATH ... [--exclude-dlq DLQ.ndjson] > matches.jsonl

--rules LIST: a file of Sigma rule paths, one per line (or the JSON lines of `vigil sigma convert --json`,
whose `path` is used). Each rule is converted by pySigma's SQLite backend and run over an SQLite table
built from the records of its logsource; the output is one JSON line per rule:
    {"path": ..., "matched": [record key, ...]}   or   {"path": ..., "error": "..."}
A record's key is vigil's event id of it: hex of the first 16 bytes of SHA-256(source, 0x00, raw).

Correlation rules (a JSON line with `correlation`, and `uses`: the files of the rules it references) are
converted by the same backend with its correlation compiler, each referenced rule reading the table of
its own logsource (a processing pipeline sets the table per logsource), and run by the backend's own
runtime (`execute_plan`) once per input file, since vigil keeps correlation state per input (one source
partition). The output line is then
    {"path": ..., "line": ..., "windows": [[{group field: value}, start_us, end_us, [record key, ...]], ...]}
with every window the backend reports. Event times come from --times (JSON lines `{"event_id", "time_us"}`,
the `time` column vigil archived: which member holds a record's time is the normalizer's business, tested
there; what is checked here is the correlation over those times).

What is vigil's and what is pySigma's. pySigma parses the rule, applies its modifiers and writes the SQL;
SQLite runs it. This script only lays out the table the backend expects, as Zircolite (the backend's
main user) does: one TEXT COLLATE NOCASE column per field the rule names, holding the field's text; a
column `fulltext` holding the record as received (keywords search it); and SQLite's REGEXP bound to RE2
(google-re2, a pySigma dependency). The field values follow vigil's documented Sigma field mapping
(crates/vigil-sigma/src/mapping.rs), written here independently of vigil's code:
  - JSON records (CloudTrail, Kubernetes audit, GitHub audit, Okta): a dotted field walks nested objects
    (first occurrence of a repeated key); a string is its text, a number, true/false, an object or an
    array is its JSON text as written in the record; null or missing is NULL; a path through an array is
    NULL.
  - Access logs in JSON (web_access_json): cs-method, cs-uri-query, c-uri-extension, ... from `method`,
    `path`, `status`, `http_user_agent`, `host`, ... (or parsed from `request`), an absolute URI losing
    its host.
  - Syslog lines (linux_auth): keywords only; `service: sshd` selects the lines of program sshd.
Records vigil dead-lettered (--exclude-dlq) never reach its rules and are left out here too.
"""

import argparse
import hashlib
import json
import re
import sqlite3
import sys

import re2
from sigma.backends.sqlite import sqliteBackend
from sigma.collection import SigmaCollection

SOURCES = {
    "cloudtrail": "aws.cloudtrail",
    "k8s_audit": "k8s.audit",
    "github_audit": "github.audit",
    "okta": "okta.system_log",
    "web_access_json": "web.access",
    "linux_auth": "linux.auth",
}
JSON_SOURCES = {"aws.cloudtrail", "k8s.audit", "github.audit", "okta.system_log"}

# ---------------------------------------------------------------- JSON with the text of every value


class Parsed:
    """A JSON value and its text as written in the record."""

    __slots__ = ("value", "text")

    def __init__(self, value, text):
        self.value = value
        self.text = text


_NUMBER = re.compile(r"-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][-+]?[0-9]+)?")
_WS = re.compile(r"[ \t\n\r]*")
_decoder = json.JSONDecoder()


def parse_json(s):
    """`s` parsed into Parsed nodes (objects as lists of (key, Parsed), first occurrence wins on lookup)."""

    def ws(i):
        return _WS.match(s, i).end()

    def value(i):
        i = ws(i)
        c = s[i : i + 1]
        start = i
        if c == "{":
            members = []
            i = ws(i + 1)
            if s[i : i + 1] == "}":
                return Parsed(members, s[start : i + 1]), i + 1
            while True:
                i = ws(i)
                if s[i : i + 1] != '"':
                    raise ValueError("key expected")
                key, i = json.decoder.scanstring(s, i + 1)
                i = ws(i)
                if s[i : i + 1] != ":":
                    raise ValueError(": expected")
                v, i = value(i + 1)
                members.append((key, v))
                i = ws(i)
                if s[i : i + 1] == ",":
                    i += 1
                    continue
                if s[i : i + 1] == "}":
                    return Parsed(members, s[start : i + 1]), i + 1
                raise ValueError(", or } expected")
        if c == "[":
            items = []
            i = ws(i + 1)
            if s[i : i + 1] == "]":
                return Parsed(items, s[start : i + 1]), i + 1
            while True:
                v, i = value(i)
                items.append(v)
                i = ws(i)
                if s[i : i + 1] == ",":
                    i += 1
                    continue
                if s[i : i + 1] == "]":
                    return Parsed(items, s[start : i + 1]), i + 1
                raise ValueError(", or ] expected")
        if c == '"':
            text, end = json.decoder.scanstring(s, i + 1)
            return Parsed(text, s[start:end]), end
        for literal, v in (("true", True), ("false", False), ("null", None)):
            if s.startswith(literal, i):
                return Parsed(v, literal), i + len(literal)
        m = _NUMBER.match(s, i)
        if m and m.end() > i:
            return Parsed(float(m.group()), m.group()), m.end()
        raise ValueError("value expected")

    v, end = value(0)
    if ws(end) != len(s):
        raise ValueError("trailing text")
    return v


def json_field(root, name):
    """The text of field `name` (dotted path) in a parsed record, or None."""
    node = root
    for step in name.split("."):
        if not isinstance(node.value, list) or (node.value and not isinstance(node.value[0], tuple)):
            return None  # not an object (an array, or a scalar)
        for key, child in node.value:
            if key == step:
                node = child
                break
        else:
            return None
    v = node.value
    if v is None:
        return None
    if isinstance(v, str) and node.text.startswith('"'):
        return v
    return node.text  # number, true/false, object or array: as written


# ---------------------------------------------------------------- access logs (web_access_json)


def web_fields(record):
    """The access-log fields of a web_access_json record (vigil's documented mapping)."""

    def text(key):
        v = record.get(key)
        if v is None or isinstance(v, (dict, list)):
            return None
        if isinstance(v, bool):
            return "true" if v else "false"
        return str(v) if not isinstance(v, str) else v

    method, path = text("method"), text("path")
    request = text("request")
    if request is not None and (method is None or path is None):
        parts = request.split(" ", 2)
        if len(parts) >= 2 and parts[0] and re.fullmatch(r"[A-Z_-]{1,16}", parts[0]) and parts[1]:
            method = method if method is not None else parts[0]
            path = path if path is not None else parts[1]
    if path is not None:
        m = re.match(r"^[A-Za-z][A-Za-z0-9+.-]*://[^/]*", path)
        if m:
            path = path[m.end() :] or "/"
    status = record.get("status")
    fields = {
        "cs-method": method,
        "c-method": method,
        "cs-uri": path,
        "c-uri": path,
        "cs-uri-query": path,
        "c-useragent": text("http_user_agent"),
        "cs-user-agent": text("http_user_agent"),
        "cs(User-Agent)": text("http_user_agent"),
        "sc-status": None if status is None else str(status),
        "cs-referer": text("http_referer"),
        "cs(Referer)": text("http_referer"),
        "cs-username": text("remote_user"),
        "cs-host": text("host"),
        "c-host": text("host"),
        "cs(Host)": text("host"),
    }
    if path is not None:
        stem = path.split("?", 1)[0]
        fields["cs-uri-stem"] = fields["c-uri-stem"] = stem
        fields["c-uri-query"] = path.split("?", 1)[1] if "?" in path else None
        segment = stem.rsplit("/", 1)[-1]
        fields["c-uri-extension"] = segment.rsplit(".", 1)[1] if "." in segment else None
    return fields


# ---------------------------------------------------------------- records


class Record:
    __slots__ = ("key", "source", "text", "fields", "program", "input")

    def __init__(self, key, source, text, input_index):
        self.key, self.source, self.text = key, source, text
        self.fields, self.program = None, None
        self.input = input_index


_SYSLOG = re.compile(
    r"^(?:[A-Z][a-z]{2} +\d{1,2} \d\d:\d\d:\d\d|\d{4}-\d\d-\d\dT\S+) +\S+ +([^\s\[(:]+)"
)


def read_records(inputs, excluded):
    records = []
    for input_index, spec in enumerate(inputs):
        fmt, path = spec.split(":", 1)
        source = SOURCES[fmt]
        with open(path, "rb") as f:
            for line in f:
                raw = line.rstrip(b"\n")
                if raw.endswith(b"\r"):
                    raw = raw[:-1]
                if not raw.strip():
                    continue
                key = hashlib.sha256(source.encode() + b"\0" + raw).hexdigest()[:32]
                if key in excluded:
                    continue
                try:
                    text = raw.decode("utf-8")
                except UnicodeDecodeError:
                    text = None  # never searched by keywords, never parsed (vigil: TRY_CAST gives NULL)
                rec = Record(key, source, text, input_index)
                if text is not None and source in JSON_SOURCES:
                    try:
                        rec.fields = parse_json(text)
                    except (ValueError, IndexError):
                        rec.fields = None
                elif text is not None and source == "web.access":
                    try:
                        rec.fields = web_fields(json.loads(text))
                    except (ValueError, AttributeError):
                        rec.fields = None
                elif text is not None and source == "linux.auth":
                    m = _SYSLOG.match(text)
                    rec.program = m.group(1) if m else None
                records.append(rec)
    return records


def excluded_keys(dlq_paths):
    """Keys of the records vigil dead-lettered (their original bytes are in the dead letter)."""
    import base64

    keys = set()
    for path in dlq_paths:
        with open(path) as f:
            for line in f:
                d = json.loads(line)
                raw = d.get("raw_base64")
                data = base64.b64decode(raw) if raw is not None else d.get("raw", "").encode()
                fmt = d.get("format")
                if fmt in SOURCES:
                    keys.add(hashlib.sha256(SOURCES[fmt].encode() + b"\0" + data).hexdigest()[:32])
    return keys


def selected(logsource, records):
    """The records a rule's logsource selects, as vigil's mapping does; None: not mapped."""
    p, s, c = logsource.product, logsource.service, logsource.category
    if (p, s) == ("aws", "cloudtrail") and c is None:
        src, prog = "aws.cloudtrail", None
    elif (p, s) == ("kubernetes", "audit") and c in (None, "application"):
        src, prog = "k8s.audit", None
    elif (p, s) == ("github", "audit") and c in (None, "application"):
        src, prog = "github.audit", None
    elif p == "okta" and s in (None, "okta") and c is None:
        src, prog = "okta.system_log", None
    elif p == "linux" and s in (None, "syslog", "auth") and c is None:
        src, prog = "linux.auth", None
    elif p == "linux" and s in ("sshd", "sudo", "su") and c is None:
        src, prog = "linux.auth", s
    elif p is None and s is None and c in ("webserver", "proxy"):
        src, prog = "web.access", None
    else:
        return None
    return [r for r in records if r.source == src and (prog is None or r.program == prog)]


def field_value(rec, name):
    if rec.fields is None:
        return None
    if rec.source in JSON_SOURCES:
        return json_field(rec.fields, name)
    return rec.fields.get(name)


def regexp(pattern, value):
    if value is None or pattern is None:
        return None
    return 1 if re2.search(pattern, value) else 0


def correlation_windows(entry, records, times):
    """Every window pySigma's SQLite backend reports for the correlation `entry`, over each input alone."""
    from sigma.backends.sqlite.runtime import execute_plan
    from sigma.processing.conditions import LogsourceCondition
    from sigma.processing.pipeline import ProcessingItem, ProcessingPipeline
    from sigma.processing.transformations import SetStateTransformation
    from sigma.rule import SigmaRule

    paths = [entry["path"]] + [u for u in entry.get("uses", []) if u != entry["path"]]
    collection = SigmaCollection.merge(
        [SigmaCollection.from_yaml(open(p).read(), resolve_references=False) for p in paths]
    )
    logsources = []
    for rule in collection.rules:
        if isinstance(rule, SigmaRule):
            ls = (rule.logsource.product, rule.logsource.service, rule.logsource.category)
            if ls not in logsources:
                logsources.append(ls)
    tables = {f"t{i}": ls for i, ls in enumerate(logsources)}
    items = [
        ProcessingItem(
            identifier=name,
            transformation=SetStateTransformation("table", name),
            rule_conditions=[LogsourceCondition(product=p, service=s, category=c)],
        )
        for name, (p, s, c) in tables.items()
    ]
    backend = sqliteBackend(
        processing_pipeline=ProcessingPipeline(items=items),
        fulltext_field="fulltext",
        timestamp_field="_time",
        timestamp_format="unix_us",
        event_id_field="_key",
    )
    outputs = json.loads(backend.convert(collection, "zircolite"))
    chosen = [
        o for o in outputs
        if o.get("result_type") == "correlation"
        and (o.get("id") or "") == (entry.get("sigma_id") or "")
        and (entry.get("sigma_id") or o.get("title") == entry.get("title"))
    ]
    if len(chosen) != 1:
        raise ValueError(f"{len(chosen)} correlations of the file match id {entry.get('sigma_id')!r}")
    plan = chosen[0]["correlation_plan"]

    class Logsource:
        def __init__(self, ls):
            self.product, self.service, self.category = ls

    windows = set()
    inputs = sorted({r.input for r in records})
    for input_index in inputs:
        mine = [r for r in records if r.input == input_index]
        db = sqlite3.connect(":memory:")
        db.create_function("regexp", 2, regexp, deterministic=True)
        for table, fields in plan["required_fields"].items():
            chosen_records = selected(Logsource(tables[table]), mine) or []
            names = [f for f in fields if f not in ("_key", "_time", "fulltext")]
            cols = ", ".join(
                ['"_key" TEXT', '"_time" INTEGER', '"fulltext" TEXT COLLATE NOCASE']
                + [f'"{c}" TEXT COLLATE NOCASE' for c in names]
            )
            db.execute(f"CREATE TABLE {table} ({cols})")
            db.executemany(
                f"INSERT INTO {table} VALUES ({', '.join('?' * (3 + len(names)))})",
                [[r.key, times.get(r.key), r.text] + [field_value(r, f) for f in names] for r in chosen_records],
            )
        rows, _ = execute_plan(db, plan, include_events=False)
        for row in rows:
            ids = sorted(i.split(":", 1)[1] for i in row["event_ids"])
            windows.add((
                json.dumps(row["group_keys"], sort_keys=True),
                round(row["window_start"] * 1_000_000),
                round(row["window_end"] * 1_000_000),
                tuple(ids),
            ))
        db.close()
    return [[json.loads(g), start, end, list(ids)] for g, start, end, ids in sorted(windows)]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rules", required=True)
    ap.add_argument("--input", action="append", default=[])
    ap.add_argument("--exclude-dlq", action="append", default=[])
    ap.add_argument("--times", help="JSON lines {event_id, time_us}: event times for correlations")
    args = ap.parse_args()
    entries = []
    with open(args.rules) as f:
        for line in f:
            line = line.strip()
            if line.startswith("{"):
                entries.append(json.loads(line))
            elif line:
                entries.append({"path": line})
    records = read_records(args.input, excluded_keys(args.exclude_dlq))
    times = {}
    if args.times:
        with open(args.times) as f:
            for line in f:
                if line.strip():
                    t = json.loads(line)
                    times[t["event_id"]] = t["time_us"]
    db = sqlite3.connect(":memory:")
    db.create_function("regexp", 2, regexp, deterministic=True)
    for entry in entries:
        path = entry["path"]
        out = {"path": path, "line": entry.get("line")}
        if entry.get("correlation"):
            try:
                out["windows"] = correlation_windows(entry, records, times)
            except Exception as e:
                out["error"] = f"{type(e).__name__}: {e}"
            print(json.dumps(out))
            sys.stdout.flush()
            continue
        try:
            with open(path) as f:
                collection = SigmaCollection.from_yaml(f.read())
            rule = collection.rules[0]
            if len(collection.rules) > 1:  # several documents: the one vigil converted, alone
                rule = next(r for r in collection.rules if str(r.id or "") == (entry.get("sigma_id") or "") and r.title == entry.get("title", r.title))
                collection = SigmaCollection([rule])
            backend = sqliteBackend(table="logs", fulltext_field="fulltext")
            queries = backend.convert(collection)
            chosen = selected(rule.logsource, records)
            if chosen is None:
                raise ValueError("logsource not mapped")
            fields = sorted(set(backend.required_fields(rule)) - {"fulltext"})
            lowered = {}
            for fld in fields:
                if fld.lower() in lowered and lowered[fld.lower()] != fld:
                    raise ValueError(f"fields {fld} and {lowered[fld.lower()]} differ only in case (one SQLite column)")
                lowered[fld.lower()] = fld
            db.execute("DROP TABLE IF EXISTS logs")
            cols = ", ".join(f'"{c}" TEXT COLLATE NOCASE' for c in ["_key", "fulltext"] + fields)
            db.execute(f"CREATE TABLE logs ({cols})")
            db.executemany(
                f"INSERT INTO logs VALUES ({', '.join('?' * (2 + len(fields)))})",
                [[r.key, r.text] + [field_value(r, fld) for fld in fields] for r in chosen],
            )
            matched = set()
            for q in queries:
                cur = db.execute(q)
                names = [d[0] for d in cur.description]
                k = names.index("_key")
                matched.update(row[k] for row in cur)
            out["matched"] = sorted(matched)
            out["query"] = queries[0] if len(queries) == 1 else queries
        except Exception as e:  # a rule pySigma refuses is reported, not fatal
            out["error"] = f"{type(e).__name__}: {e}"
        print(json.dumps(out))
        sys.stdout.flush()


if __name__ == "__main__":
    main()
