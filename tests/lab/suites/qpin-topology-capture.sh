#!/bin/sh
# qpin-topology-capture: on the lab kernel, 'qpin topology --capture DIR'
# reproduces the checked-in fixture tests/fixtures/<topology> file for file,
# and reading the capture, the fixture or the live sysfs gives the same JSON.
# What changes by the second is left out: in node meminfo only MemTotal is
# compared, in the JSON free memory is dropped.
# lab-topologies: lab-2s2c2t lab-4n-unequal lab-1n4c
# shellcheck shell=sh source-path=SCRIPTDIR
# shellcheck source=../lab-lib.sh
. "$QPIN_LAB_DIR/lab-lib.sh"

qpin=$(qpin_bin)
[ -n "$qpin" ] || skip "no qpin binary in $QPIN_BUILD_DIR (pinner/qpin)"
"$qpin" topology --help >/dev/null 2>&1 || skip "this qpin has no 'topology' subcommand yet"
fixture=$QPIN_SOURCE_DIR/tests/fixtures/$QPIN_LAB_TOPOLOGY
[ -d "$fixture" ] || skip "no fixture $fixture checked in yet"

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

if ! "$qpin" topology --capture "$work/capture"; then
	fail "qpin topology --capture failed"
	finish
fi
# proc/, after/, etc/ and the rest outside the topology: what qpin diagnose reads
if diff -r -x meminfo -x proc -x after -x etc -x kernel -x module -x cpufreq "$fixture" "$work/capture"; then
	echo "ok: capture equals $fixture (meminfo aside)"
else
	fail "capture differs from $fixture (regenerate it: see README-lab.md)"
fi
for f in "$work"/capture/sys/devices/system/node/node*/meminfo; do
	rel=${f#"$work"/capture/}
	check_eq "$rel MemTotal" "$(grep MemTotal "$f")" "$(grep MemTotal "$fixture/$rel" 2>&1)"
done

"$qpin" topology --json >"$work/live.json" || fail "qpin topology --json failed"
"$qpin" topology --sysfs-root "$work/capture" --json >"$work/capture.json" ||
	fail "qpin topology --sysfs-root CAPTURE --json failed"
"$qpin" topology --sysfs-root "$fixture" --json >"$work/fixture.json" ||
	fail "qpin topology --sysfs-root FIXTURE --json failed"
for f in capture fixture; do
	python3 "$QPIN_LAB_DIR/topology-check.py" same "$work/live.json" "$work/$f.json" || {
		fail "JSON from the $f differs from the live JSON:"
		diff "$work/live.json" "$work/$f.json"
	}
done
finish
