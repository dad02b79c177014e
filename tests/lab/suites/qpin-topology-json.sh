#!/bin/sh
# qpin-topology-json: 'qpin topology --json' on the lab kernel agrees with
# the topology the lab booted and with libnuma (numactl -H).
# lab-topologies: all
# shellcheck shell=sh source-path=SCRIPTDIR
# shellcheck source=../lab-lib.sh
. "$QPIN_LAB_DIR/lab-lib.sh"

qpin=$(qpin_bin)
[ -n "$qpin" ] || skip "no qpin binary in $QPIN_BUILD_DIR (pinner/qpin)"
"$qpin" topology --help >/dev/null 2>&1 || skip "this qpin has no 'topology' subcommand yet"

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

if ! "$qpin" topology --json >"$work/live.json"; then
	fail "qpin topology --json failed"
	finish
fi
cat "$work/live.json"
python3 "$QPIN_LAB_DIR/topology-check.py" check "$work/live.json" ||
	fail "qpin topology --json disagrees"
finish
