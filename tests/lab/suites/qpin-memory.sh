#!/bin/sh
# qpin-memory: 'qpin attach --once' with memory=migrate on a real
# multi-node kernel: a nested QEMU whose RAM starts on node 0 (numactl
# --membind=0, preallocated) is placed on node 1 (node 0's CPUs reserved)
# and its RAM ends on node 1 (/proc/PID/numa_maps); sched=fifo:10 gives its
# vCPU thread SCHED_FIFO priority 10.
# lab-topologies: lab-2s2c2t lab-4n-unequal
# shellcheck shell=sh source-path=SCRIPTDIR disable=SC2317 # trap calls cleanup
# shellcheck source=../lab-lib.sh
. "$QPIN_LAB_DIR/lab-lib.sh"

qpin=$(qpin_bin)
[ -n "$qpin" ] || skip "no qpin binary in $QPIN_BUILD_DIR (pinner/qpin)"
command -v qemu-system-x86_64 >/dev/null || skip "no qemu-system-x86_64 on the host root"
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

# pages of the guest RAM (the largest anonymous mapping) on node $1
pages_on() {
	awk -v node="N$1=" '{ anon = 0; n = 0
	       for (i = 1; i <= NF; i++) {
	         if ($i ~ /^anon=/) anon = substr($i, 6) + 0
	         if (index($i, node) == 1) n = substr($i, length(node) + 1) + 0 }
	       if (anon > best) { best = anon; on = n } }
	     END { print on + 0 }' "/proc/$qemu_pid/numa_maps"
}
mostly_on() { [ "$(pages_on "$1")" -ge $((pages * 95 / 100)) ]; }

numactl --membind=0 qemu-system-x86_64 -accel tcg -S -nodefaults -display none \
	-no-user-config -m "$ram_mib" -mem-prealloc -smp 1 -name mem,debug-threads=on \
	-qmp "unix:$work/qmp.sock,server=on,wait=off" >"$work/qemu.log" 2>&1 &
qemu_pid=$!
wait_for 60 mostly_on 0 || { cat "$work/qemu.log"; fail "guest RAM not on node 0 at start"; finish; }
echo "ok: guest RAM on node 0 at start ($(pages_on 0) pages)"

if ! env -u G_DEBUG "$qpin" attach --once --json --policy "reserved=$QPIN_LAB_NODE0_CPUS" \
	--policy memory=migrate --policy sched=fifo:10 "$work/qmp.sock" >"$work/attach.json"; then
	cat "$work/attach.json"
	fail "qpin attach failed"
	finish
fi
grep -E '"memory"|"memory_nodes"' "$work/attach.json"
want=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["vms"][0]["memory_nodes"])' "$work/attach.json")
check_eq "memory nodes are not node 0" "$(echo "$want" | grep -c '^0')" 0
node=${want%%[-,]*}
if wait_for 30 mostly_on "$node"; then
	echo "ok: guest RAM on node $node after memory=migrate ($(pages_on "$node") pages)"
else
	fail "guest RAM not on node $node: $(pages_on "$node") of $pages pages"
fi

for t in /proc/"$qemu_pid"/task/*; do
	case $(cat "$t/comm") in
	"CPU "*)
		check_eq "vCPU ${t##*/} scheduling" "$(chrt -p "${t##*/}" | head -1 | sed 's/.*: //')" SCHED_FIFO
		check_eq "vCPU ${t##*/} priority" "$(chrt -p "${t##*/}" | sed -n 2p | sed 's/.*: //')" 10 ;;
	esac
done
finish
