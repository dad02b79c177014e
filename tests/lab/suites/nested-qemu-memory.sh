#!/bin/sh
# nested-qemu-memory: the lab kernel can place and move a QEMU's guest RAM
# between nodes, as 'memory=migrate' will: a nested QEMU started bound to
# node 0 with preallocated RAM has it on node 0 (/proc/PID/numa_maps), and
# after migratepages it is on the last node (CPU-less in lab-4n-unequal).
# lab-topologies: lab-2s2c2t lab-4n-unequal
# shellcheck shell=sh source-path=SCRIPTDIR disable=SC2317 # trap calls cleanup
# shellcheck source=../lab-lib.sh
. "$QPIN_LAB_DIR/lab-lib.sh"

command -v qemu-system-x86_64 >/dev/null || skip "no qemu-system-x86_64 on the host root"
command -v migratepages >/dev/null || skip "no migratepages (package numactl)"
[ "$QPIN_LAB_NODES" -ge 2 ] || skip "one node only"

work=$(mktemp -d)
qemu_pid=""
cleanup() {
	[ -z "$qemu_pid" ] || stop_pid "$qemu_pid"
	rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

ram_mib=64
pages=$((ram_mib * 256))
target=$((QPIN_LAB_NODES - 1))

# The guest RAM is the largest anonymous mapping; print its pages per node
# as "N0=123 N1=4".
ram_nodes() {
	awk '{ anon = 0; for (i = 1; i <= NF; i++) if ($i ~ /^anon=/) anon = substr($i, 6) + 0
	       if (anon > best) { best = anon; line = "" ; for (i = 1; i <= NF; i++) if ($i ~ /^N[0-9]+=/) line = line " " $i } }
	     END { sub(/^ /, "", line); print line }' "/proc/$qemu_pid/numa_maps"
}

pages_on() { # NODE
	ram_nodes | tr ' ' '\n' | sed -n "s/^N$1=//p" | awk '{ s += $1 } END { print s + 0 }'
}

mostly_on() { # NODE: at least 95% of the guest RAM is there
	[ "$(pages_on "$1")" -ge $((pages * 95 / 100)) ]
}

numactl --membind=0 qemu-system-x86_64 -accel tcg -S -nodefaults -display none \
	-no-user-config -m "$ram_mib" -mem-prealloc >"$work/qemu.log" 2>&1 &
qemu_pid=$!

if wait_for 60 mostly_on 0; then
	echo "ok: guest RAM on node 0: $(ram_nodes)"
else
	cat "$work/qemu.log"
	fail "guest RAM not on node 0 after start: $(ram_nodes)"
	finish
fi

if migratepages "$qemu_pid" 0 "$target"; then
	if wait_for 30 mostly_on "$target"; then
		echo "ok: guest RAM on node $target after migratepages: $(ram_nodes)"
	else
		fail "guest RAM not on node $target after migratepages: $(ram_nodes)"
	fi
else
	fail "migratepages $qemu_pid 0 $target failed"
fi
finish
