#!/usr/bin/env python3
"""Compare 'qpin topology --json' output with the lab's view.

topology-check.py check JSON
    against the topology the lab booted (QPIN_LAB_* variables) and libnuma's
    own answer (numactl -H): nodes with their CPUs, distances and memory;
    packages; cores (SMT sibling groups); LLC groups (QEMU models one L3 per
    socket); present and online CPUs. Read tolerantly: "nodes" must exist
    (top level or under "topology"), each with an id ("id", "node" or
    "index") and CPUs ("cpus" or "cpulist": a cpulist or a list of numbers);
    the rest is checked when present.
topology-check.py same A.json B.json
    equal once values that change by the second (free memory) are dropped.

Exit 1 with one line per mismatch.
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


VOLATILE = ("mem_free_kb", "mem_used_kb")


def stable(value):
    if isinstance(value, dict):
        return {k: stable(v) for k, v in value.items() if k not in VOLATILE}
    if isinstance(value, list):
        return [stable(v) for v in value]
    return value


def same(path_a, path_b):
    docs = []
    for path in (path_a, path_b):
        with open(path, encoding="utf-8") as f:
            docs.append(stable(json.load(f)))
    if docs[0] != docs[1]:
        print("FAIL: %s and %s differ (besides %s)" % (path_a, path_b, ", ".join(VOLATILE)))
        return 1
    print("ok: %s and %s agree" % (path_a, path_b))
    return 0


def expected_groups(size):
    """CPU groups of SIZE consecutive CPUs, as sorted lists."""
    total = int(os.environ["QPIN_LAB_CPUS"])
    return sorted(list(range(i, i + size)) for i in range(0, total, size))


def check_groups(doc, key, size, what, errors):
    items = doc.get(key)
    if not isinstance(items, list):
        return
    try:
        got = sorted(as_cpus(item["cpus"]) for item in items)
    except (KeyError, TypeError, ValueError) as e:
        errors.append("%s: %s" % (key, e))
        return
    want = expected_groups(size)
    if got != want:
        errors.append("%s %s, want %s (%s)" % (key, got, want, what))
    else:
        print("ok: %d %s (%s)" % (len(got), key, what))


def check_extras(doc, nodes, errors):
    total = int(os.environ["QPIN_LAB_CPUS"])
    threads = int(os.environ["QPIN_LAB_THREADS"])
    per_pkg = int(os.environ["QPIN_LAB_CORES"]) * threads
    for key in ("present", "online"):
        if key in doc:
            if as_cpus(doc[key]) != list(range(total)):
                errors.append("%s %s, want 0-%d" % (key, doc[key], total - 1))
            else:
                print("ok: %s %s" % (key, doc[key]))
    check_groups(doc, "packages", per_pkg, "one per socket", errors)
    check_groups(doc, "cores", threads, "SMT sibling groups", errors)
    check_groups(doc, "llc_groups", per_pkg, "QEMU models one L3 per socket", errors)
    for pos, node in enumerate(nodes):
        nid = next((node[k] for k in ("id", "node", "index") if k in node), pos)
        if "mem_total_kb" not in node:
            continue
        mib = node["mem_total_kb"] // 1024
        ask = int(os.environ.get("QPIN_LAB_NODE%s_MEM_MIB" % nid, 0))
        if not ask * 6 // 10 <= mib <= ask:
            errors.append("node %s mem_total_kb is %d MiB, asked for %d MiB" % (nid, mib, ask))
        else:
            print("ok: node %s memory %d MiB of %d MiB" % (nid, mib, ask))


def main(argv):
    if len(argv) == 4 and argv[1] == "same":
        return same(argv[2], argv[3])
    if len(argv) != 3 or argv[1] != "check":
        print(__doc__.strip(), file=sys.stderr)
        return 2
    with open(argv[2], encoding="utf-8") as f:
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
    check_extras(doc if "nodes" in doc else doc.get("topology", {}), nodes, errors)
    for e in errors:
        print("FAIL: " + e)
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
