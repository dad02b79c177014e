#!/bin/sh
# qpin-attach: 'qpin attach --once' pins a nested QEMU (2 cores x 2 threads)
# with cpus=dedicated, numa=strict, smt=prefer; checked through the lab
# kernel's /proc: one CPU per vCPU, all different, all on one node, and on a
# topology with SMT the guest's thread siblings on host thread siblings.
# lab-topologies: lab-2s2c2t lab-4n-unequal lab-1n4c
# shellcheck shell=sh source-path=SCRIPTDIR disable=SC2317 # trap calls cleanup
# shellcheck source=../lab-lib.sh
. "$QPIN_LAB_DIR/lab-lib.sh"

qpin=$(qpin_bin)
[ -n "$qpin" ] || skip "no qpin binary in $QPIN_BUILD_DIR (pinner/qpin)"
"$qpin" attach --help >/dev/null 2>&1 || skip "this qpin has no 'attach' subcommand yet"
command -v qemu-system-x86_64 >/dev/null || skip "no qemu-system-x86_64 on the host root"

work=$(mktemp -d)
sock=$work/qmp.sock
qemu_pid=""
cleanup() {
	[ -z "$qemu_pid" ] || stop_pid "$qemu_pid"
	rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

status_cpus() { # TID
	sed -n 's/^Cpus_allowed_list:[[:space:]]*//p' "/proc/$qemu_pid/task/$1/status"
}

qemu-system-x86_64 -accel tcg -S -nodefaults -display none -no-user-config \
	-smp 4,sockets=1,cores=2,threads=2 -m 64 -name attach,debug-threads=on \
	-qmp "unix:$sock,server=on,wait=off" >"$work/qemu.log" 2>&1 &
qemu_pid=$!

tids=$(python3 "$QPIN_LAB_DIR/qmp.py" "$sock" query-cpus-fast | python3 -c '
import json, sys
print(" ".join(str(c["thread-id"]) for c in sorted(json.load(sys.stdin), key=lambda c: c["cpu-index"])))') || {
	cat "$work/qemu.log"
	fail "query-cpus-fast failed"
	finish
}
check_eq "vCPU threads" "$(echo "$tids" | wc -w)" 4

if ! "$qpin" attach --once --json --policy cpus=dedicated --policy numa=strict \
	--policy smt=prefer "$sock" >"$work/attach.json"; then
	cat "$work/attach.json"
	fail "qpin attach failed"
	finish
fi
cat "$work/attach.json"

cpus=""
for tid in $tids; do
	c=$(status_cpus "$tid")
	case $c in
	*[-,]*) fail "vCPU thread $tid may run on $c, not one CPU" ;;
	*) echo "ok: vCPU thread $tid pinned to CPU $c" ;;
	esac
	cpus="$cpus $c"
done
check_eq "distinct CPUs" "$(echo "$cpus" | tr ' ' '\n' | grep . | sort -u | wc -l)" 4

nodes=""
for c in $cpus; do
	nodes="$nodes $(node_of_cpu "$c")"
done
check_eq "nodes used" "$(echo "$nodes" | tr ' ' '\n' | grep . | sort -u | wc -l)" 1

if [ "$QPIN_LAB_THREADS" -gt 1 ]; then
	# shellcheck disable=SC2086 # split the list on purpose
	set -- $cpus
	for pair in "$1 $2" "$3 $4"; do
		a=${pair% *} b=${pair#* }
		sibs=$(cat "/sys/devices/system/cpu/cpu$a/topology/thread_siblings_list")
		case " $(expand_cpulist "$sibs") " in
		*" $b "*) echo "ok: guest siblings on host siblings $a and $b" ;;
		*) fail "guest siblings on CPUs $a and $b, which are not host siblings ($sibs)" ;;
		esac
	done
fi
finish
