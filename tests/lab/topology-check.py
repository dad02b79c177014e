#!/usr/bin/env python3
"""topology-check.py JSON: compare 'qpin topology --json' with the lab's view.

References: the topology the lab booted (QPIN_LAB_* variables) and libnuma's
own answer (numactl -H). The JSON shape is read tolerantly: a list of nodes
under "nodes" (top level or under "topology"), each with an id ("id",
"node" or "index"), its CPUs ("cpus" or "cpulist": a cpulist string or a list
of numbers) and optionally its distances ("distances": a list). Exit 1 with
one line per mismatch.
"""

import json
import os
import re
import subprocess
import sys


def parse_cpulist(text):
    cpus = []
    for part in filter(None, text.replace(" ", "").split(",")):
        lo, _, hi = part.partition("-")
        cpus.extend(range(int(lo), int(hi or lo) + 1))
    return cpus


def as_cpus(value):
    if isinstance(value, str):
        return sorted(parse_cpulist(value))
    if isinstance(value, list):
        return sorted(int(v) for v in value)
    raise ValueError("cpus neither a cpulist nor a list: %r" % (value,))


def find_nodes(doc):
    for holder in (doc, doc.get("topology") if isinstance(doc, dict) else None):
        if isinstance(holder, dict) and isinstance(holder.get("nodes"), list):
            return holder["nodes"]
    return None


def numactl():
    out = subprocess.run(["numactl", "-H"], capture_output=True, text=True,
                         check=True).stdout
    nodes = {}
    for m in re.finditer(r"^node (\d+) cpus:(.*)$", out, re.M):
        nodes[int(m.group(1))] = sorted(int(c) for c in m.group(2).split())
    return nodes


def main(argv):
    with open(argv[1], encoding="utf-8") as f:
        doc = json.load(f)
    nodes = find_nodes(doc)
    if nodes is None:
        print("FAIL: no 'nodes' list in the JSON; teach topology-check.py its shape")
        return 1
    want = {i: sorted(parse_cpulist(os.environ["QPIN_LAB_NODE%d_CPUS" % i]))
            for i in range(int(os.environ["QPIN_LAB_NODES"]))}
    libnuma = numactl()
    got = {}
    dists = {}
    errors = []
    for pos, node in enumerate(nodes):
        nid = next((node[k] for k in ("id", "node", "index") if k in node), pos)
        cpus = next((node[k] for k in ("cpus", "cpulist") if k in node), None)
        try:
            got[int(nid)] = as_cpus(cpus) if cpus is not None else []
        except ValueError as e:
            errors.append("node %s: %s" % (nid, e))
        if isinstance(node.get("distances"), list):
            dists[int(nid)] = [int(d) for d in node["distances"]]
    for name, ref in (("the lab topology", want), ("numactl -H", libnuma)):
        if got != ref:
            errors.append("nodes and CPUs %s differ from %s %s" % (got, name, ref))
        else:
            print("ok: nodes and CPUs agree with %s" % name)
    for nid, row in sorted(dists.items()):
        ref = os.environ.get("QPIN_LAB_NODE%d_DISTANCES" % nid, "")
        if " ".join(map(str, row)) != ref:
            errors.append("node %d distances %s, want %s" % (nid, row, ref))
        else:
            print("ok: node %d distances %s" % (nid, ref))
    for e in errors:
        print("FAIL: " + e)
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
