#!/bin/bash
# unplug-guest: vCPU hot-add and a real unplug, with a Linux guest that
# completes the ACPI eject (QEMU cannot unplug a vCPU without one).  The
# daemon watches the VM; `qpin hotplug VM add` gives the new vCPU its CPU,
# `qpin hotplug VM remove` asks the guest, QEMU reports DEVICE_DELETED for
# the vCPU's lapic only, and the daemon must notice the vCPU is gone and
# free its CPU.  The guest: the lab's Debian kernel and a busybox init.
set -euo pipefail

build=${QPIN_BUILD_DIR:?}
src=${QPIN_SOURCE_DIR:?}
qpin=$build/pinner/qpin
work=$(mktemp -d "$build/unplug-guest-XXXXXX")
qemu_pid="" daemon_pid=""
cleanup() {
  [ -z "$qemu_pid" ] || kill "$qemu_pid" 2>/dev/null || true
  [ -z "$daemon_pid" ] || kill "$daemon_pid" 2>/dev/null || true
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
fail() {
  echo "FAIL: $*"
  echo "--- guest console"; tail -20 "$work/console.log" 2>/dev/null || true
  echo "--- daemon"; cat "$work/daemon.log" 2>/dev/null || true
  exit 1
}
wait_for() { # SECONDS COMMAND...
  local end=$(($(date +%s) + $1)); shift
  until "$@" 2>/dev/null; do [ "$(date +%s)" -lt "$end" ] || return 1; sleep 0.2; done
}

"$src/tests/lab/qpin-lab" fetch >/dev/null
cache=${QPIN_LAB_CACHE:-/var/cache/qpin-lab}
[ "$(id -u)" -eq 0 ] || cache=${QPIN_LAB_CACHE:-$HOME/.cache/qpin-lab}
kernel=$(ls -d "$cache"/kernel-*/vmlinuz | tail -1)
[ -f "$kernel" ] || fail "no kernel in $cache"
busybox=$(command -v busybox) || fail "no busybox (package busybox-static)"

# a guest that onlines every CPU it is given and otherwise waits
mkdir -p "$work/root/bin" "$work/root/proc" "$work/root/sys" "$work/root/dev"
cp "$busybox" "$work/root/bin/busybox"
for a in sh mount sleep cat; do ln -s busybox "$work/root/bin/$a"; done
cat >"$work/root/init" <<'INIT'
#!/bin/sh
mount -t proc proc /proc
mount -t sysfs sys /sys
echo "guest: up"
while true; do
  for f in /sys/devices/system/cpu/cpu[1-9]*/online; do
    [ -e "$f" ] && [ "$(cat "$f")" = 0 ] && echo 1 >"$f" 2>/dev/null && echo "guest: onlined $f"
  done
  sleep 0.5
done
INIT
chmod +x "$work/root/init"
(cd "$work/root" && find . | cpio -o -H newc 2>/dev/null) >"$work/init.cpio"

mkdir "$work/vms"
env -u G_DEBUG "$qpin" daemon --no-listen --watch "$work/vms" --control "$work/ctl" \
  --interval 0 --grace 0 --policy overcommit=share >"$work/daemon.log" 2>&1 &
daemon_pid=$!

qemu-system-x86_64 -accel tcg -m 256 -smp 1,maxcpus=2 -nodefaults -display none -no-reboot \
  -name guest,debug-threads=on -kernel "$kernel" -initrd "$work/init.cpio" \
  -append "console=ttyS0 panic=-1 quiet" -serial "file:$work/console.log" \
  -qmp "unix:$work/vms/guest.sock,server=on,wait=off" &
qemu_pid=$!

vcpus_pinned() { # N: the daemon pins exactly N vCPUs of the guest
  "$qpin" status --json --control "$work/ctl" | python3 -c '
import json, sys
v = [v for v in json.load(sys.stdin)["vms"] if v["name"] == "guest"]
t = [t for t in v[0]["threads"] if t["role"] == "vcpu"] if v else []
sys.exit(0 if v and v[0]["state"] == "pinned" and len(t) == int(sys.argv[1])
         and all(x["applied"] for x in t) else 1)' "$1"
}
booted() { grep -q "guest: up" "$work/console.log"; }
onlined() { grep -q "guest: onlined" "$work/console.log"; }

wait_for 120 booted || fail "the guest did not boot"
wait_for 30 vcpus_pinned 1 || fail "the daemon did not pin the guest"
"$qpin" hotplug guest add --control "$work/ctl" || fail "qpin hotplug add failed"
wait_for 30 vcpus_pinned 2 || fail "the hot-added vCPU is not pinned"
wait_for 60 onlined || fail "the guest did not online the new CPU"
echo "ok: vCPU hot-added, pinned, onlined by the guest"
"$qpin" hotplug guest remove --control "$work/ctl" || fail "qpin hotplug remove failed"
wait_for 60 vcpus_pinned 1 || fail "the unplugged vCPU is still in the daemon's view"
grep -q "vcpu 1 is gone, its CPUs are free" "$work/daemon.log" || fail "no release logged"
echo "ok: vCPU unplugged by the guest, its CPU freed"
"$qpin" status --control "$work/ctl"
