#!/bin/busybox sh
# guest-init.sh: PID 1 of a lab guest (busybox sh, packed as /init).
#
# The runner (qpin-lab) appends a second cpio holding /lab/env (the nonce,
# module list and the topology the kernel must show) and /lab/run.sh (the
# command). Protocol on /dev/ttyS1, the only channel the runner parses:
#   QPIN-LAB-READY <nonce>        host root mounted, topology as asked
#   ...command output...
#   QPIN-LAB-EXIT <nonce> <rc>    the command's exit status
#   QPIN-LAB-ERROR <nonce> <why>  the guest could not run the command
# Kernel messages stay on the console (/dev/ttyS0), which the runner logs.
# shellcheck shell=sh

PATH=/bin:/sbin:/usr/bin:/usr/sbin
export PATH

/bin/busybox mkdir -p /proc /sys /dev /sbin /usr/bin /usr/sbin /host
/bin/busybox --install -s
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
exec </dev/console >/dev/console 2>&1

# shellcheck source=/dev/null
. /lab/env

out=/dev/ttyS1
stty -F "$out" raw -echo 2>/dev/null

say() {
	echo "QPIN-LAB-$1 $LAB_NONCE $2" >"$out"
}

halt_now() {
	sync
	poweroff -f
	reboot -f
}

die() {
	echo "qpin-lab-init: $*"
	echo "qpin-lab-init: last kernel messages:"
	dmesg | tail -n 15
	say ERROR "$*"
	halt_now
}

die_topology() {
	echo "qpin-lab-init: what the kernel said about the topology:"
	dmesg | grep -E 'SRAT|SLIT|NUMA' | grep -v 'PXM .* -> APIC' | tail -n 15
	dmesg | grep -E 'smpboot|smp:' | tail -n 5
	echo "qpin-lab-init: $*"
	say ERROR "kernel rejected topology: $*"
	halt_now
}

# The gate: refuse to run anything on a topology other than the one asked
# for (QEMU accepts some tables the kernel then ignores, e.g. a bad SLIT).
check_topology() {
	got=$(cat /sys/devices/system/cpu/present)
	[ "$got" = "$LAB_EXPECT_PRESENT" ] ||
		die_topology "CPUs present '$got', asked for '$LAB_EXPECT_PRESENT'"
	got=$(cat /sys/devices/system/node/online)
	[ "$got" = "$LAB_EXPECT_NODES" ] ||
		die_topology "nodes online '$got', asked for '$LAB_EXPECT_NODES'"
	n=0
	while [ "$n" -lt "$LAB_NODE_COUNT" ]; do
		want_cpus="" want_dist=""
		eval "want_cpus=\$LAB_EXPECT_CPUS_$n want_dist=\$LAB_EXPECT_DIST_$n"
		got=$(cat "/sys/devices/system/node/node$n/cpulist")
		[ "$got" = "$want_cpus" ] ||
			die_topology "node$n cpulist '$got', asked for '$want_cpus'"
		got=$(cat "/sys/devices/system/node/node$n/distance")
		[ "$got" = "$want_dist" ] ||
			die_topology "node$n distances '$got', asked for '$want_dist'"
		n=$((n + 1))
	done
}

mount_host() {
	for m in $LAB_MODULES; do
		insmod "/lib/modules/$m.ko" || die "cannot load module $m"
	done
	mount -t 9p -o "trans=virtio,version=9p2000.L,ro,msize=262144,cache=loose" \
		hostroot /host || die "cannot mount the host root over 9p"
	# the command's directory may be under the host's /tmp: keep it visible
	# then (scratch space is /run/tmp, TMPDIR)
	if [ "$LAB_KEEP_TMP" != 1 ]; then
		mount -t tmpfs -o mode=1777 tmpfs /host/tmp || die "cannot mount /tmp"
	fi
	mount -t tmpfs -o mode=755 tmpfs /host/run || die "cannot mount /run"
	mount -t proc proc /host/proc || die "cannot mount /proc"
	mount -t sysfs sysfs /host/sys || die "cannot mount /sys"
	mount -t devtmpfs devtmpfs /host/dev || die "cannot mount /dev"
	mkdir -p /host/dev/pts /host/dev/shm
	mount -t devpts devpts /host/dev/pts
	mount -t tmpfs -o mode=1777 tmpfs /host/dev/shm
	if [ -n "$LAB_WRITABLE" ]; then
		mkdir -p "/host$LAB_WRITABLE" 2>/dev/null
		mount -t 9p -o "trans=virtio,version=9p2000.L,msize=262144" \
			hostrw "/host$LAB_WRITABLE" || die "cannot mount $LAB_WRITABLE writable"
	fi
	cp /lab/run.sh /host/run/qpin-lab-run.sh || die "cannot copy the command"
}

check_topology
mount_host
say READY
chroot /host /bin/sh /run/qpin-lab-run.sh </dev/null >"$out" 2>&1
rc=$?
sync
say EXIT "$rc"
halt_now
