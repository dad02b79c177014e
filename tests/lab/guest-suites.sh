#!/bin/sh
# guest-suites.sh: runs inside a lab guest (qpin-lab run ... -- sh guest-suites.sh)
# and reports TAP: one test per suite in suites/ that declares the topology.
# QPIN_LAB_ONLY="name ..." restricts to those suites. Between suites, every
# CPU is brought back online so one suite's failure does not leak.
# shellcheck shell=sh

QPIN_LAB_DIR=$(cd "$(dirname "$0")" && pwd)
QPIN_SOURCE_DIR=${QPIN_SOURCE_DIR:-$(cd "$QPIN_LAB_DIR/../.." && pwd)}
QPIN_BUILD_DIR=${QPIN_BUILD_DIR:-$(pwd)}
export QPIN_LAB_DIR QPIN_SOURCE_DIR QPIN_BUILD_DIR
suites=${1:-$QPIN_LAB_DIR/suites}
topo=${QPIN_LAB_TOPOLOGY:?not inside a lab guest}
timeout=${QPIN_LAB_SUITE_TIMEOUT:-240}
work=$(mktemp -d)

wanted() {
	name=$(basename "$1" .sh)
	topos=$(sed -n 's/^# lab-topologies://p' "$1")
	case " $topos " in
	*" $topo "* | *" all "*) ;;
	*) return 1 ;;
	esac
	[ -z "${QPIN_LAB_ONLY:-}" ] && return 0
	case " $QPIN_LAB_ONLY " in
	*" $name "*) return 0 ;;
	esac
	return 1
}

restore_cpus() {
	for f in /sys/devices/system/cpu/cpu[0-9]*/online; do
		[ "$(cat "$f")" = 1 ] || echo 1 >"$f" || echo "# cannot bring ${f%/online} back online"
	done
}

# "# [UPTIME] line": the guest's clock on every line shows where time goes
stamp() {
	while IFS= read -r line || [ -n "$line" ]; do
		read -r up _ </proc/uptime
		printf '# [%s] %s\n' "$up" "$line"
	done
}

count=0
for f in "$suites"/*.sh; do
	wanted "$f" && count=$((count + 1))
done
echo "1..$count"
[ "$count" -gt 0 ] || echo "# no suite in $suites runs on $topo"

i=0
failed=0
for f in "$suites"/*.sh; do
	wanted "$f" || continue
	i=$((i + 1))
	name=$(basename "$f" .sh)
	echo "# --- $name on $topo"
	start=$(date +%s)
	{
		timeout -k 5 "$timeout" sh "$f"
		echo $? >"$work/rc"
	} 2>&1 | tee "$work/out" | stamp
	rc=$(cat "$work/rc")
	secs=$(($(date +%s) - start))
	case $rc in
	0) echo "ok $i - $name ($secs s)" ;;
	77) echo "ok $i - $name # SKIP $(grep -v '^ok: ' "$work/out" | tail -n 1 | sed 's/^SKIP: //')" ;;
	124 | 137) echo "not ok $i - $name (timed out after $timeout s)" ;;
	*) echo "not ok $i - $name (exit status $rc, $secs s)" ;;
	esac
	case $rc in 0 | 77) ;; *) failed=$((failed + 1)) ;; esac
	restore_cpus
done
rm -rf "$work"
[ "$failed" -eq 0 ]
