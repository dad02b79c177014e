#!/bin/sh
# check-topology: the lab kernel shows the topology the lab asked for
# (nodes, cpulists, memory, distances, SMT siblings, packages, numactl),
# and CPU offline/online through sysfs works and is seen everywhere.
# lab-topologies: all
# shellcheck shell=sh source-path=SCRIPTDIR
# shellcheck source=../lab-lib.sh
. "$QPIN_LAB_DIR/lab-lib.sh"

sys=/sys/devices/system
nodes=$QPIN_LAB_NODES
cpus=$QPIN_LAB_CPUS
threads=$QPIN_LAB_THREADS
per_pkg=$((QPIN_LAB_CORES * threads))

check_nodes() {
	check_eq "nodes online" "$(cat $sys/node/online)" "$(lab_range 0 $((nodes - 1)))"
	check_eq "nodes with memory" "$(cat $sys/node/has_memory)" "$(lab_range 0 $((nodes - 1)))"
	with_cpu=""
	i=0
	while [ "$i" -lt "$nodes" ]; do
		want=$(node_var "$i" CPUS)
		[ -n "$want" ] && with_cpu="$with_cpu,$i"
		check_eq "node$i cpulist" "$(cat $sys/node/node$i/cpulist)" "$want"
		check_eq "node$i distances" "$(cat $sys/node/node$i/distance)" "$(node_var "$i" DISTANCES)"
		mib=$(awk '/MemTotal/ { print int($4 / 1024) }' $sys/node/node$i/meminfo)
		want_mib=$(node_var "$i" MEM_MIB)
		# The kernel keeps some memory for itself: accept 60-100% of the ask.
		if [ "$mib" -gt "$want_mib" ] || [ "$mib" -lt $((want_mib * 6 / 10)) ]; then
			fail "node$i MemTotal $mib MiB, asked for $want_mib MiB"
		else
			echo "ok: node$i MemTotal $mib MiB of $want_mib MiB"
		fi
		i=$((i + 1))
	done
	check_eq "nodes with CPUs" "$(cat $sys/node/has_cpu)" "$(compress_list "${with_cpu#,}")"
}

check_cpus() {
	check_eq "CPUs online" "$(cat $sys/cpu/online)" "$(lab_range 0 $((cpus - 1)))"
	check_eq "nproc" "$(nproc)" "$cpus"
	cpu=0
	while [ "$cpu" -lt "$cpus" ]; do
		first=$((cpu / threads * threads))
		pkg_first=$((cpu / per_pkg * per_pkg))
		topo="$sys/cpu/cpu$cpu/topology"
		check_eq "cpu$cpu thread siblings" "$(cat "$topo/thread_siblings_list")" \
			"$(lab_range "$first" $((first + threads - 1)))"
		check_eq "cpu$cpu package" "$(cat "$topo/physical_package_id")" $((cpu / per_pkg))
		check_eq "cpu$cpu package CPUs" "$(cat "$topo/core_siblings_list")" \
			"$(lab_range "$pkg_first" $((pkg_first + per_pkg - 1)))"
		node=$(basename "$(echo $sys/cpu/cpu$cpu/node*)")
		check_eq "cpu$cpu node" "$node" "node$(node_of_cpu "$cpu")"
		cpu=$((cpu + 1))
	done
	if [ "$threads" -gt 1 ]; then
		check_eq "SMT active" "$(cat $sys/cpu/smt/active)" 1
	else
		check_eq "SMT active" "$(cat $sys/cpu/smt/active)" 0
	fi
}

check_numactl() {
	out=$(numactl -H) || {
		fail "numactl -H failed"
		return
	}
	check_eq "numactl nodes" "$(echo "$out" | sed -n 's/^available: \([0-9]*\) nodes.*/\1/p')" "$nodes"
	i=0
	while [ "$i" -lt "$nodes" ]; do
		got=$(echo "$out" | sed -n "s/^node $i cpus: *//p" | sed 's/ *$//')
		check_eq "numactl node $i cpus" "$got" "$(expand_cpulist "$(node_var "$i" CPUS)")"
		got=$(echo "$out" | awk -v n="$i" '$1 == n ":" { $1 = ""; print }' | sed 's/^ *//')
		check_eq "numactl distances from node $i" "$got" "$(node_var "$i" DISTANCES)"
		i=$((i + 1))
	done
}

# Take the last CPU offline, check every view drops it, bring it back.
check_offline() {
	cpu=$(last_cpu)
	if [ "$cpu" -eq 0 ]; then
		echo "one CPU only: no offline check"
		return
	fi
	node=$(node_of_cpu "$cpu")
	sib=$((cpu / threads * threads))
	echo 0 >"$sys/cpu/cpu$cpu/online" || {
		fail "cannot take cpu$cpu offline"
		return
	}
	check_eq "cpu$cpu online flag" "$(cat "$sys/cpu/cpu$cpu/online")" 0
	check_eq "CPUs offline" "$(cat $sys/cpu/offline)" "$cpu"
	check_eq "CPUs online" "$(cat $sys/cpu/online)" "$(lab_range 0 $((cpu - 1)))"
	check_eq "nproc" "$(nproc)" "$cpu"
	want=$(expand_cpulist "$(node_var "$node" CPUS)" | tr ' ' '\n' | grep -vx "$cpu" | tr '\n' ',')
	check_eq "node$node cpulist without cpu$cpu" "$(cat "$sys/node/node$node/cpulist")" \
		"$(compress_list "${want%,}")"
	if [ "$threads" -gt 1 ]; then
		check_eq "cpu$sib siblings without cpu$cpu" \
			"$(cat $sys/cpu/cpu$sib/topology/thread_siblings_list)" \
			"$(lab_range "$sib" $((cpu - 1)))"
	fi
	if taskset -c "$cpu" true 2>/dev/null; then
		fail "taskset onto offline cpu$cpu succeeded"
	else
		echo "ok: taskset onto offline cpu$cpu refused"
	fi
	echo 1 >"$sys/cpu/cpu$cpu/online" || {
		fail "cannot bring cpu$cpu back online"
		return
	}
	check_eq "CPUs online again" "$(cat $sys/cpu/online)" "$(lab_range 0 $((cpus - 1)))"
	check_eq "node$node cpulist again" "$(cat "$sys/node/node$node/cpulist")" "$(node_var "$node" CPUS)"
	check_eq "cpu$cpu siblings again" "$(cat "$sys/cpu/cpu$cpu/topology/thread_siblings_list")" \
		"$(lab_range "$sib" $((sib + threads - 1)))"
	# A task pinned there really runs there (field 39 of stat: last CPU).
	# shellcheck disable=SC2016 # awk's $39, not the shell's
	ran=$(taskset -c "$cpu" awk '{ print $39 }' /proc/self/stat)
	check_eq "task pinned to cpu$cpu ran on" "$ran" "$cpu"
}

check_nodes
check_cpus
check_numactl
check_offline
finish
