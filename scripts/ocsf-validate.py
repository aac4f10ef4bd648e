#!/usr/bin/env python3
"""Validates OCSF Detection Findings (one JSON object per line) against the OCSF model of the
py-ocsf-models package (installed by deploy/local/ocsf.sh), with no vigil code:

    $(deploy/local/ocsf.sh python) scripts/ocsf-validate.py alerts.ocsf.ndjson

Each line must
  - validate as py_ocsf_models' DetectionFinding in strict mode (required attributes present, types
    and enum values such as class_uid, activity_id, type_uid, severity_id and status_id valid), and
  - dump back to itself (exclude_unset): an attribute the model does not define is dropped by pydantic,
    so a finding with an attribute OCSF does not have under that name fails here. Only `unmapped` and
    `evidences[].data` (OCSF's free-form JSON) may hold anything.
Also checks what the model leaves to the producer: type_uid = class_uid * 100 + activity_id, and
finding_info.uid = metadata.uid.

Prints a JSON summary {"findings": N, "invalid": M, "errors": [...]} and exits 1 when any line fails.
"""

import json
import sys

from py_ocsf_models.events.findings.detection_finding import DetectionFinding


def differences(expected, actual, path=""):
    """Where `actual` (the model's dump) lacks or changes what `expected` (the input) holds."""
    if isinstance(expected, dict) and isinstance(actual, dict):
        out = []
        for key, value in expected.items():
            if key not in actual:
                out.append(f"{path}.{key}: not an attribute of the OCSF model")
            else:
                out.extend(differences(value, actual[key], f"{path}.{key}"))
        return out
    if isinstance(expected, list) and isinstance(actual, list):
        if len(expected) != len(actual):
            return [f"{path}: {len(expected)} items became {len(actual)}"]
        out = []
        for i, (e, a) in enumerate(zip(expected, actual)):
            out.extend(differences(e, a, f"{path}[{i}]"))
        return out
    if expected != actual:
        return [f"{path}: {expected!r} became {actual!r}"]
    return []


def check(line):
    finding = json.loads(line)
    model = DetectionFinding.model_validate_json(line, strict=True)
    dumped = model.model_dump(mode="json", exclude_unset=True)
    problems = differences(finding, dumped)
    if finding.get("type_uid") != finding.get("class_uid", 0) * 100 + finding.get("activity_id", 0):
        problems.append("type_uid is not class_uid * 100 + activity_id")
    if finding.get("class_uid") != 2004 or finding.get("category_uid") != 2:
        problems.append("not a Detection Finding (class_uid 2004, category_uid 2)")
    if finding.get("finding_info", {}).get("uid") != finding.get("metadata", {}).get("uid"):
        problems.append("finding_info.uid differs from metadata.uid")
    return problems


def main():
    if len(sys.argv) != 2:
        print("usage: ocsf-validate.py FINDINGS.ndjson", file=sys.stderr)
        return 2
    findings, invalid, errors = 0, 0, []
    with open(sys.argv[1], encoding="utf-8") as f:
        for number, line in enumerate(f, 1):
            if not line.strip():
                continue
            findings += 1
            try:
                problems = check(line)
            except Exception as e:  # a pydantic ValidationError or a JSON error: the line is invalid
                problems = [str(e).replace("\n", " ")[:500]]
            if problems:
                invalid += 1
                if len(errors) < 20:
                    errors.append({"line": number, "problems": problems})
    print(json.dumps({"findings": findings, "invalid": invalid, "errors": errors}))
    return 1 if invalid or not findings else 0


if __name__ == "__main__":
    sys.exit(main())
