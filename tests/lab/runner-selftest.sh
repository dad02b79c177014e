#!/bin/sh
# runner-selftest.sh: qpin-lab's own behaviour on good and bad input (TAP).
# Each case checks the exit status, the one clear line, that it finished
# within its time, and that no QEMU of that case is left behind.
# Runs on the host, from the build directory (meson: suite 'lab').
# shellcheck shell=sh disable=SC2317,SC2016 # trap calls cleanup; guest-side $(...)

here=$(cd "$(dirname "$0")" && pwd)
lab=$here/qpin-lab
tmp=$(mktemp -d)
n=0
failed=0
cleanup() {
	rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

# topology NAME BASE [PYTHON-EXPRESSION-ON-t]: write $tmp/NAME.json, a copy
# of BASE from topologies.json, edited
topology() {
	python3 - "$here/topologies.json" "$tmp/$1.json" "$2" "${3:-None}" <<'EOF'
import json, sys
src, dst, base, edit = sys.argv[1:]
t = json.load(open(src))[base]
exec(edit)
json.dump(t, open(dst, "w"))
EOF
}

# leftover NAME: pids of a QEMU started for topology NAME still running
leftover() {
	pgrep -f "qemu-system-x86_64 .*-name qpin-lab-$1 " || true
}

# expect NAME WANT-STATUS WANT-TEXT MAX-SECONDS ARGS...: run qpin-lab ARGS
expect() {
	name=$1 want=$2 text=$3 max=$4
	shift 4
	n=$((n + 1))
	start=$(date +%s)
	"$lab" "$@" >"$tmp/out" 2>&1
	rc=$?
	report "$name" "$want" "$text" "$max" "$rc" "$start"
}

report() {
	name=$1 want=$2 text=$3 max=$4 rc=$5 start=$6
	secs=$(($(date +%s) - start))
	sed 's/^/# /' "$tmp/out"
	why=""
	[ "$rc" = "$want" ] || why="exit status $rc, want $want"
	grep -q -- "$text" "$tmp/out" || why="${why:+$why; }no line matching '$text'"
	[ "$secs" -le "$max" ] || why="${why:+$why; }took $secs s, limit $max s"
	left=$(leftover "$name")
	if [ -n "$left" ]; then
		why="${why:+$why; }QEMU left behind: $left"
		for pid in $left; do kill -9 "$pid"; done
	fi
	if [ -z "$why" ]; then
		echo "ok $n - $name ($secs s)"
	else
		echo "not ok $n - $name: $why"
		failed=$((failed + 1))
	fi
}

echo "1..9"

# 1. A command's output, directory and exit status come back.
topology selftest-basic lab-1n4c
expect selftest-basic 3 "^in $(pwd) as uid 0, stderr too" 90 \
	run -t "$tmp/selftest-basic.json" -- sh -c 'echo "in $(pwd) as uid $(id -u), stderr too" >&2; exit 3'

# 2. A topology QEMU refuses (node CPUs beyond the machine).
topology selftest-qemu-rejects lab-1n4c 't["nodes"][0]["cpus"] = "0-9"'
expect selftest-qemu-rejects 125 "qemu exited with status 1 before the guest came up: .*" 30 \
	run -t "$tmp/selftest-qemu-rejects.json" -- true

# 3. A topology the kernel rejects (a SLIT with remote distance 10 is
# ignored by Linux, which then reports 10/20): caught before the command runs.
topology selftest-kernel-rejects lab-2s2c2t 't["distances"] = [[10, 10], [10, 10]]'
expect selftest-kernel-rejects 125 "kernel rejected topology: node0 distances '10 20', asked for '10 10'" 90 \
	run -t "$tmp/selftest-kernel-rejects.json" -- true

# 4. A guest that hangs: killed at the timeout, console tail printed.
topology selftest-hang lab-1n4c
expect selftest-hang 124 "timed out after 40 s" 50 \
	run -t "$tmp/selftest-hang.json" --timeout 40 -- sleep 1000

# 5. No cpio in PATH (every other tool still there).
mkdir "$tmp/bin"
for f in /usr/local/bin/* /usr/bin/* /usr/sbin/*; do
	case ${f##*/} in cpio) ;; *) ln -sf "$f" "$tmp/bin/" ;; esac
done
topology selftest-no-cpio lab-1n4c
n=$((n + 1))
start=$(date +%s)
PATH=$tmp/bin "$lab" run -t "$tmp/selftest-no-cpio.json" -- true >"$tmp/out" 2>&1
report selftest-no-cpio 125 "cpio not found in PATH" 30 $? "$start"

# 6. No kernel package reachable.
topology selftest-no-kernel lab-1n4c
expect selftest-no-kernel 125 "no kernel package reachable: .*linux-image-0.0.0-qpin-none-amd64" 60 \
	run -t "$tmp/selftest-no-kernel.json" --kernel-package linux-image-0.0.0-qpin-none-amd64 -- true

# 7. SIGTERM to the runner while the guest runs: guest stopped, 143.
topology selftest-sigterm lab-1n4c
n=$((n + 1))
start=$(date +%s)
"$lab" run -t "$tmp/selftest-sigterm.json" -- sleep 1000 >"$tmp/out" 2>&1 &
pid=$!
i=0
until grep -q "guest up" "$tmp/out" || [ "$i" -ge 60 ]; do
	sleep 1
	i=$((i + 1))
done
kill -TERM "$pid"
wait "$pid"
report selftest-sigterm 143 "interrupted by SIGTERM, guest stopped" 90 $? "$start"

# 8. SIGKILL to the runner: QEMU dies with it (parent-death signal).
topology selftest-sigkill lab-1n4c
n=$((n + 1))
start=$(date +%s)
"$lab" run -t "$tmp/selftest-sigkill.json" -- sleep 1000 >"$tmp/out" 2>&1 &
pid=$!
i=0
until grep -q "guest up" "$tmp/out" || [ "$i" -ge 60 ]; do
	sleep 1
	i=$((i + 1))
done
kill -KILL "$pid"
wait "$pid"
rc=$?
sleep 2
echo "runner killed" >>"$tmp/out"
report selftest-sigkill 137 "guest up" 90 "$rc" "$start"

# 9. The suites can fail: the check suite, told a wrong distance, says so.
topology selftest-check-fails lab-1n4c
# (boots a guest and runs a suite: slow when the host is busy, seen at 121 s)
expect selftest-check-fails 1 "not ok 1 - check-topology" 300 \
	run -t "$tmp/selftest-check-fails.json" --tap --boot-timeout 240 --env QPIN_LAB_ONLY=check-topology \
	--env "QPIN_LAB_NODE0_DISTANCES=10 20" -- sh "$here/guest-suites.sh"

[ "$failed" -eq 0 ]
