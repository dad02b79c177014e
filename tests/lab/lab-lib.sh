# lab-lib.sh: helpers for lab suites (sourced; runs inside the guest).
# shellcheck shell=sh
#
# A suite is tests/lab/suites/NAME.sh with a line
#   # lab-topologies: lab-2s2c2t lab-1n4c      (or: all)
# It runs as root inside the guest, in $QPIN_BUILD_DIR when set, with:
#   QPIN_LAB_TOPOLOGY          the topology's name
#   QPIN_LAB_SOCKETS, _CORES, _THREADS, _CPUS, _NODES
#   QPIN_LAB_NODE<i>_CPUS      cpulist in the kernel's format ("" if CPU-less)
#   QPIN_LAB_NODE<i>_MEM_MIB   memory asked for the node
#   QPIN_LAB_NODE<i>_DISTANCES "10 21 ..." the row of the distance matrix
#   QPIN_LAB_DIR, QPIN_SOURCE_DIR, QPIN_BUILD_DIR
# Exit 0 pass, 77 skip (print why first), anything else fail.

lab_failures=0

# fail MESSAGE: record a failure, keep going
fail() {
	echo "FAIL: $*"
	lab_failures=$((lab_failures + 1))
}

# skip REASON: the whole suite cannot run here
skip() {
	echo "SKIP: $*"
	exit 77
}

# check_eq WHAT GOT WANT
check_eq() {
	if [ "$2" = "$3" ]; then
		echo "ok: $1 = '$3'"
	else
		fail "$1: got '$2', want '$3'"
	fi
}

# finish: the suite's exit status
finish() {
	if [ "$lab_failures" -ne 0 ]; then
		echo "$lab_failures check(s) failed"
		exit 1
	fi
	exit 0
}

# expand_cpulist "0-2,5" -> "0 1 2 5"
expand_cpulist() {
	echo "$1" | tr ',' '\n' | while IFS=- read -r lo hi; do
		[ -n "$lo" ] || continue
		seq "$lo" "${hi:-$lo}"
	done | tr '\n' ' ' | sed 's/ $//'
}

# node_var I FIELD -> value of QPIN_LAB_NODE<I>_<FIELD>
node_var() {
	eval "echo \"\${QPIN_LAB_NODE$1_$2}\""
}

# node_of_cpu CPU -> the node the topology puts CPU on
node_of_cpu() {
	i=0
	while [ "$i" -lt "$QPIN_LAB_NODES" ]; do
		for c in $(expand_cpulist "$(node_var "$i" CPUS)"); do
			if [ "$c" -eq "$1" ]; then
				echo "$i"
				return
			fi
		done
		i=$((i + 1))
	done
	echo none
}

# last_cpu: the highest CPU number (never 0, which x86 cannot take offline
# unless the topology has a single CPU)
last_cpu() {
	echo $((QPIN_LAB_CPUS - 1))
}

# qpin_bin: the qpin executable of the build under test, or nothing
qpin_bin() {
	for b in "${QPIN_BIN:-}" "$QPIN_BUILD_DIR/pinner/qpin" "$QPIN_BUILD_DIR/qpin"; do
		if [ -n "$b" ] && [ -x "$b" ]; then
			echo "$b"
			return
		fi
	done
}

# wait_for SECONDS COMMAND...: poll until COMMAND succeeds (by the clock:
# under TCG one poll can take a good part of a second)
wait_for() {
	end=$(($(date +%s) + $1))
	shift
	until "$@" 2>/dev/null; do
		[ "$(date +%s)" -lt "$end" ] || return 1
		sleep 0.2
	done
}

# lab_range LO HI -> "LO-HI", or "LO" when they are equal (kernel format)
lab_range() {
	if [ "$1" -eq "$2" ]; then echo "$1"; else echo "$1-$2"; fi
}

# compress_list "0,1,2,5" -> "0-2,5" (the kernel's cpulist format)
compress_list() {
	echo "$1" | tr ',' '\n' | grep . | sort -n | awk '
		NR == 1 { lo = hi = $1; next }
		$1 == hi + 1 { hi = $1; next }
		{ out = out sep (lo == hi ? lo : lo "-" hi); sep = ","; lo = hi = $1 }
		END { if (NR) out = out sep (lo == hi ? lo : lo "-" hi); print out }'
}

# stop_pid PID: SIGTERM, up to 10 s to exit, then SIGKILL; reaps it (a
# TCG QEMU on a starved lab CPU can take a while to honour SIGTERM)
stop_pid() {
	kill "$1" 2>/dev/null || return 0
	end=$(($(date +%s) + 10))
	while kill -0 "$1" 2>/dev/null && [ "$(date +%s)" -lt "$end" ]; do
		sleep 0.2
	done
	kill -9 "$1" 2>/dev/null
	wait "$1" 2>/dev/null
}
