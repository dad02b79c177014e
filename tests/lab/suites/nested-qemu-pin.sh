#!/bin/sh
# nested-qemu-pin: a QEMU started inside the lab (-accel tcg -S) has one
# thread per vCPU (from query-cpus-fast); each can be pinned with taskset -p,
# the lab kernel's /proc shows the new affinity, other threads keep theirs,
# and after 'cont' each vCPU thread runs on the CPU it was pinned to.
# lab-topologies: all
# shellcheck shell=sh source-path=SCRIPTDIR disable=SC2317 # trap and wait_for call functions
# shellcheck source=../lab-lib.sh
. "$QPIN_LAB_DIR/lab-lib.sh"

command -v qemu-system-x86_64 >/dev/null || skip "no qemu-system-x86_64 on the host root"
py=$(command -v python3) || skip "no python3 for the QMP helper"

work=$(mktemp -d)
sock=$work/qmp.sock
qemu_pid=""
cleanup() {
	[ -z "$qemu_pid" ] || stop_pid "$qemu_pid"
	rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

qmp() {
	"$py" "$QPIN_LAB_DIR/qmp.py" "$sock" "$@"
}

status_field() { # PID TID FIELD
	sed -n "s/^$3:[[:space:]]*//p" "/proc/$1/task/$2/status"
}

last_ran_on() { # PID TID: field 39 of stat; comm ("CPU 0/TCG") has spaces
	# shellcheck disable=SC2016 # awk's $37, not the shell's
	sed 's/.*) //' "/proc/$1/task/$2/stat" | awk '{ print $37 }'
}

ran_on() { # PID TID CPU
	[ "$(last_ran_on "$1" "$2")" = "$3" ]
}

all=$(lab_range 0 $((QPIN_LAB_CPUS - 1)))
vcpus=2
[ "$QPIN_LAB_CPUS" -ge 2 ] || vcpus=1

# Firmware that is nothing but HLT: after 'cont' the vCPUs run once and go
# idle. SeaBIOS would keep two lab CPUs busy under nested TCG and starve the
# lab (which has only as much host CPU as the host has cores).
head -c 65536 /dev/zero | tr '\0' '\364' >"$work/hlt.bin"

qemu-system-x86_64 -accel tcg -S -nodefaults -display none -no-user-config \
	-bios "$work/hlt.bin" -smp "$vcpus" -m 64 -name nested,debug-threads=on \
	-qmp "unix:$sock,server=on,wait=off" >"$work/qemu.log" 2>&1 &
qemu_pid=$!

cpus_json=$(qmp query-cpus-fast) || {
	cat "$work/qemu.log"
	fail "query-cpus-fast failed"
	finish
}
echo "query-cpus-fast: $cpus_json"
tids=$(echo "$cpus_json" | "$py" -c '
import json, sys
print(" ".join(str(c["thread-id"]) for c in sorted(json.load(sys.stdin), key=lambda c: c["cpu-index"])))')
check_eq "vCPU count" "$(echo "$tids" | wc -w)" "$vcpus"
check_eq "distinct vCPU threads" "$(echo "$tids" | tr ' ' '\n' | sort -u | wc -l)" "$vcpus"
check_eq "status before cont" "$(qmp query-status | "$py" -c 'import json,sys; print(json.load(sys.stdin)["status"])')" prelaunch

# vCPU 0 goes to the highest CPU (the last node), vCPU 1 to CPU 1.
set -- "$(last_cpu)" 1
i=0
for tid in $tids; do
	target=$1
	shift
	check_eq "thread $tid is a vCPU thread" "$(cat "/proc/$qemu_pid/task/$tid/comm")" "CPU $i/TCG"
	check_eq "vCPU $i affinity before" "$(status_field "$qemu_pid" "$tid" Cpus_allowed_list)" "$all"
	if taskset -p -c "$target" "$tid"; then
		check_eq "vCPU $i Cpus_allowed_list" \
			"$(status_field "$qemu_pid" "$tid" Cpus_allowed_list)" "$target"
		check_eq "vCPU $i taskset -p readback" \
			"$(taskset -p -c "$tid" | sed 's/.*: //')" "$target"
	else
		fail "taskset -p -c $target $tid failed"
	fi
	eval "target_$i=$target"
	i=$((i + 1))
done
check_eq "main thread keeps its affinity" \
	"$(status_field "$qemu_pid" "$qemu_pid" Cpus_allowed_list)" "$all"

qmp cont >/dev/null || fail "cont failed"
i=0
for tid in $tids; do
	eval "target=\$target_$i"
	if wait_for 30 ran_on "$qemu_pid" "$tid" "$target"; then
		echo "ok: vCPU $i ran on CPU $target"
	else
		fail "vCPU $i last ran on CPU $(last_ran_on "$qemu_pid" "$tid"), pinned to $target"
	fi
	i=$((i + 1))
done
finish
