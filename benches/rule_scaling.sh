#!/usr/bin/env bash
# What each rule costs as a pack grows: `vigil bench` over one file with packs of 10, 30 and 100 rules (the
# kit's 11 translated rules, then the SOC 2 pack, then copies of both under new ids to reach 100).
#
#   benches/rule_scaling.sh FILE [THREADS] [VIGIL]     # VIGIL defaults to target/release/vigil
#
# Prints one line per pack size (events/s, rules_s) and the per-rule cost in µs per event: the slope of
# rules_s between the smallest and largest pack, divided by the events.
set -euo pipefail
cd "$(dirname "$0")/.."
file=${1:?usage: benches/rule_scaling.sh FILE [THREADS] [VIGIL]}
threads=${2:-1}
vigil=${3:-target/release/vigil}
work=$(mktemp -d /tmp/vigil-rule-scaling.XXXXXX)
trap 'rm -rf "$work"' EXIT
mapfile -t all < <(ls benches/rules/*.sql pipelines/rules/soc2/*.sql)
for n in 10 30 100; do
  dir="$work/pack-$n"
  mkdir -p "$dir"
  for ((i = 0; i < n; i++)); do
    src=${all[i % ${#all[@]}]}
    name=$(basename "$src" .sql)
    if ((i < ${#all[@]})); then
      cp "$src" "$dir/"
    else
      sed "0,/^-- id: .*/s//-- id: ${name}_copy$i/" "$src" > "$dir/${name}_copy$i.sql"
    fi
  done
done
printf '%-6s %12s %10s %10s\n' rules events/s rules_s total_s
declare -A rules_s
for n in 10 30 100; do
  line=$("$vigil" bench --format cloudtrail --threads "$threads" --rules "$work/pack-$n" --out "$work/out" "$file" 2>/dev/null | grep '^{' | tail -1)
  read -r eps rs ts events < <(python3 -c 'import json,sys; d=json.loads(sys.argv[1]); print(d["events_per_s"], d["rules_s"], d["total_s"], d["events"])' "$line")
  rules_s[$n]=$rs
  printf '%-6s %12.0f %10.3f %10.3f\n' "$n" "$eps" "$rs" "$ts"
done
python3 -c 'import sys; a,b,e=map(float,sys.argv[1:]); print(f"per rule: {(b-a)/90/e*1e6:.3f} µs per event (slope of rules_s from 10 to 100 rules)")' "${rules_s[10]}" "${rules_s[100]}" "$events"
