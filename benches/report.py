#!/usr/bin/env python3
"""Prints the results of the last `cargo bench -p palisade-benches` run as
Markdown tables, one per benchmark group, read from criterion's
target/criterion/**/new/estimates.json. Numbers are criterion's own
estimates: the median time per iteration and its 95% confidence interval."""

import json
import pathlib
import sys

root = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else "target/criterion")
groups = {}
for bench in sorted(root.glob("**/new/benchmark.json")):
    meta = json.loads(bench.read_text())
    est = json.loads((bench.parent / "estimates.json").read_text())["median"]
    ci = est["confidence_interval"]
    groups.setdefault(meta["group_id"], []).append(
        (meta["function_id"] or meta["full_id"], est["point_estimate"], ci["lower_bound"], ci["upper_bound"])
    )


def fmt(ns):
    return f"{ns / 1000:.2f} µs" if ns >= 1000 else f"{ns:.2f} ns"


for group, rows in groups.items():
    print(f"\n### {group}\n")
    print("| benchmark | median | 95% CI |")
    print("|---|---:|---|")
    for name, median, lo, hi in rows:
        print(f"| {name} | {fmt(median)} | {fmt(lo)} – {fmt(hi)} |")
