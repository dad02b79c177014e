#!/bin/sh
# qpin-daemon: 'qpin daemon' on a real multi-node / SMT kernel with nested
# QEMUs (-accel tcg -S), checked through the lab kernel's /proc:
# dedicated CPUs exclusive across VMs, one node per VM, guest thread
# siblings on host siblings, an isolated emulator; a host CPU taken
# offline re-places only its thread and nothing moves back when it
# returns; kill -9 of the daemon and a restart adopt every VM as it runs;
# 'qpin hotplug' gives a new vCPU its own CPU.
# lab-topologies: lab-2s2c2t lab-4n-unequal lab-1n4c
# shellcheck shell=sh source-path=SCRIPTDIR disable=SC2317 # trap calls cleanup
# shellcheck source=../lab-lib.sh
. "$QPIN_LAB_DIR/lab-lib.sh"

qpin=$(qpin_bin)
[ -n "$qpin" ] || skip "no qpin binary in $QPIN_BUILD_DIR (pinner/qpin)"
command -v qemu-system-x86_64 >/dev/null || skip "no qemu-system-x86_64 on the host root"

work=$(mktemp -d)
mkdir "$work/vms"
ctl=$work/control.sock
daemon_pid="" pids=""
cleanup() {
	[ -z "$daemon_pid" ] || stop_pid "$daemon_pid"
	for p in $pids; do stop_pid "$p"; done
	for c in $(expand_cpulist "$(cat /sys/devices/system/cpu/offline)"); do
		echo 1 >"/sys/devices/system/cpu/cpu$c/online"
	done
	rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

emulator=share
[ "$QPIN_LAB_CPUS" -ge 6 ] && emulator=isolate

start_daemon() { # extra args
	env -u G_DEBUG "$qpin" daemon --no-listen --watch "$work/vms" --control "$ctl" --interval 500 \
		--policy cpus=dedicated --policy "emulator=$emulator" "$@" \
		>>"$work/daemon.log" 2>&1 &
	daemon_pid=$!
	wait_for 30 "$qpin" status --control "$ctl" >/dev/null ||
		{ cat "$work/daemon.log"; fail "the daemon does not answer"; finish; }
}

start_vm() { # NAME SMP
	qemu-system-x86_64 -accel tcg -S -nodefaults -display none -no-user-config -m 64 \
		-smp "$2" -name "$1,debug-threads=on" \
		-qmp "unix:$work/vms/$1.sock,server=on,wait=off" >"$work/$1.log" 2>&1 &
	pids="$pids $!"
	eval "pid_$1=$!"
}

# vm_state NAME -> the daemon's state of VM NAME
vm_state() {
	"$qpin" status --json --control "$ctl" | python3 -c '
import json, sys
vms = [v for v in json.load(sys.stdin)["vms"] if v["name"] == sys.argv[1]]
print(vms[0]["state"] if vms else "absent")' "$1"
}

pinned() { [ "$(vm_state "$1")" = pinned ]; }

# affinity PID TID
affinity() {
	sed -n 's/^Cpus_allowed_list:[[:space:]]*//p' "/proc/$1/task/$2/status"
}

# vcpu_tids PID -> "CPU n/TCG" threads in vCPU order
vcpu_tids() {
	for t in /proc/"$1"/task/*; do
		n=$(cat "$t/comm")
		case $n in "CPU "*) echo "${n#CPU } ${t##*/}" ;; esac
	done | sort -n | awk '{print $2}' | tr '\n' ' '
}

# snapshot -> "VM/TID=CPUS" for every vCPU and emulator of a and b
snapshot() {
	for vm in a b; do
		eval "p=\$pid_$vm"
		for t in $(vcpu_tids "$p") "$p"; do
			printf '%s/%s=%s ' "$vm" "$t" "$(affinity "$p" "$t")"
		done
	done
}

start_daemon --grace 0
start_vm a 2,sockets=1,cores=1,threads=2
start_vm b 1
wait_for 60 pinned a || fail "vm a not pinned: $(vm_state a)"
wait_for 60 pinned b || fail "vm b not pinned: $(vm_state b)"
"$qpin" status --control "$ctl"

# exclusivity: one CPU per vCPU, no CPU twice, all of a's on one node
all=""
for vm in a b; do
	eval "p=\$pid_$vm"
	for t in $(vcpu_tids "$p"); do
		c=$(affinity "$p" "$t")
		case $c in *[-,]*) fail "vm $vm vCPU thread $t may run on $c" ;; esac
		all="$all $c"
	done
done
set -- $(vcpu_tids "$pid_a")
a0=$(affinity "$pid_a" "$1") a1=$(affinity "$pid_a" "$2")
check_eq "vm a on one node" "$(node_of_cpu "$a0")" "$(node_of_cpu "$a1")"
if [ "$QPIN_LAB_THREADS" -gt 1 ]; then
	case " $(expand_cpulist "$(cat "/sys/devices/system/cpu/cpu$a0/topology/thread_siblings_list")") " in
	*" $a1 "*) echo "ok: guest siblings of vm a on host siblings $a0 and $a1" ;;
	*) fail "guest siblings of vm a on $a0 and $a1, not host siblings" ;;
	esac
fi
if [ "$emulator" = isolate ]; then
	for vm in a b; do
		eval "p=\$pid_$vm"
		e=$(affinity "$p" "$p")
		case $e in *[-,]*) fail "vm $vm emulator may run on $e" ;; esac
		all="$all $e"
	done
fi
n_all=$(echo "$all" | wc -w)
check_eq "CPUs held, each once" "$(echo "$all" | tr ' ' '\n' | grep . | sort -u | wc -l)" "$n_all"

# a host CPU goes offline: only the thread on it moves
set -- $(vcpu_tids "$pid_b")
b_tid=$1
b_cpu=$(affinity "$pid_b" "$b_tid")
if [ "$b_cpu" != 0 ]; then
	before=$(snapshot)
	echo 0 >"/sys/devices/system/cpu/cpu$b_cpu/online"
	moved() { c=$(affinity "$pid_b" "$b_tid"); case ",$(expand_cpulist "$c" | tr ' ' ',')," in *",$b_cpu,"*) return 1 ;; esac; [ -n "$c" ]; }
	wait_for 20 moved || fail "vm b's vCPU still allows offline CPU $b_cpu"
	wait_for 20 pinned b || fail "vm b not pinned after CPU $b_cpu went offline: $(vm_state b)"
	for entry in $before; do
		case $entry in
		"b/$b_tid="*) ;;
		*) tid=${entry%%=*} vm=${tid%%/*} tid=${tid#*/}
			eval "p=\$pid_$vm"
			[ "$vm" = b ] && [ "$tid" = "$pid_b" ] && continue # b's emulator may follow it
			check_eq "$entry unchanged while CPU $b_cpu is offline" "$vm/$tid=$(affinity "$p" "$tid")" "$entry" ;;
		esac
	done
	after_offline=$(affinity "$pid_b" "$b_tid")
	echo 1 >"/sys/devices/system/cpu/cpu$b_cpu/online"
	sleep 2
	check_eq "vm b's vCPU stays after CPU $b_cpu returns" "$(affinity "$pid_b" "$b_tid")" "$after_offline"
	grep -q "host CPU $b_cpu went offline" "$work/daemon.log" || fail "no log of CPU $b_cpu going offline"
fi

# kill -9 and restart: every VM adopted where it runs
before=$(snapshot)
kill -9 "$daemon_pid"
wait "$daemon_pid" 2>/dev/null
start_daemon --grace 1500
wait_for 60 pinned a || fail "vm a not pinned after the restart: $(vm_state a)"
wait_for 60 pinned b || fail "vm b not pinned after the restart: $(vm_state b)"
check_eq "pins after kill -9 and restart" "$(snapshot)" "$before"
grep -q "adopted its running pins" "$work/daemon.log" || fail "no adoption logged"

# qpin hotplug: the new vCPU gets a CPU of its own
if [ "$QPIN_LAB_CPUS" -ge 8 ]; then
	start_vm c 1,maxcpus=2
	wait_for 60 pinned c || fail "vm c not pinned: $(vm_state c)"
	"$qpin" hotplug c add --control "$ctl" || fail "qpin hotplug c add failed"
	has_two() { [ "$(vcpu_tids "$pid_c" | wc -w)" -eq 2 ] && pinned c; }
	wait_for 60 has_two || fail "vm c: no second vCPU pinned"
	set -- $(vcpu_tids "$pid_c")
	c1=$(affinity "$pid_c" "$2")
	case $c1 in *[-,]*) fail "hot-added vCPU may run on $c1" ;; esac
	case " $all " in *" $c1 "*) fail "hot-added vCPU on CPU $c1, held by another VM" ;; esac
fi

sed 's/^/daemon: /' "$work/daemon.log"
finish
