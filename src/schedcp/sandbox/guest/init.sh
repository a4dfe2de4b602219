#!/bin/busybox sh
# Stage 1 of the sandbox guest: runs from the initramfs as PID 1.
#
# The kernel's 9p and netfs are modules, so the host root cannot be the kernel's root= directly:
# load them, mount the host's / read-only over 9p, give the guest writable tmpfs where programs
# expect to write, mount the read-write shares, and hand PID 1 to the schedcp agent.
# Any failure powers the VM off with the reason on the console, which the host shows.

/bin/busybox --install -s /bin
export PATH=/bin

fail() {
    echo "schedcp-init: error: $*" > /dev/console
    sync
    poweroff -f
}

mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev 2>/dev/null

. /schedcp.env || fail "no /schedcp.env in the initramfs"

while read -r mod; do
    [ -n "$mod" ] || continue
    insmod "/lib/modules/$mod.ko" || fail "insmod $mod failed"
done < /lib/modules/load-order

# cache=loose: the host root is read-only for the guest and does not change under it during a
# run, and without caching every exec under TCG pays many 9p round trips.
mount -t 9p -o "trans=virtio,version=9p2000.L,ro,cache=loose,msize=262144" "$SCHEDCP_ROOT_TAG" /newroot \
    || fail "cannot mount the host root over 9p (tag $SCHEDCP_ROOT_TAG)"

for m in proc sys dev; do mount --move "/$m" "/newroot/$m" || fail "cannot move /$m"; done
mount -t tmpfs -o mode=1777 tmpfs /newroot/tmp
mount -t tmpfs -o mode=0755 tmpfs /newroot/run
for d in /var/tmp /var/log /var/cache /var/lib; do
    [ -d "/newroot$d" ] && mount -t tmpfs -o mode=0755 tmpfs "/newroot$d"
done
chmod 1777 /newroot/var/tmp
mkdir -p /newroot/dev/pts /newroot/dev/shm
mount -t devpts devpts /newroot/dev/pts
mount -t tmpfs -o mode=1777 tmpfs /newroot/dev/shm
mount -t bpf bpf /newroot/sys/fs/bpf || fail "cannot mount bpffs"
mount -t debugfs debugfs /newroot/sys/kernel/debug 2>/dev/null
mount -t tracefs tracefs /newroot/sys/kernel/tracing 2>/dev/null
mount -t cgroup2 cgroup2 /newroot/sys/fs/cgroup 2>/dev/null

# Read-write shares: "tag:path" pairs; cache=none so the host sees every write at once.
for share in $SCHEDCP_SHARES; do
    tag=${share%%:*}
    path=${share#*:}
    mkdir -p "/newroot$path" 2>/dev/null  # under a guest tmpfs (e.g. /tmp) it must be made
    mount -t 9p -o "trans=virtio,version=9p2000.L,cache=none,msize=262144" "$tag" "/newroot$path" \
        || fail "cannot mount share $tag at $path"
done

hostname schedcp-sandbox
# Loopback up: servers under test (redis, our own) listen on 127.0.0.1. The guest has no other
# network; without this every TCP workload failed with "Network is unreachable".
ip link set lo up 2>/dev/null || echo "schedcp-init: warning: could not bring up lo" > /dev/console
# The agent comes with the initramfs (which switch_root discards), so keep it on the new /run.
cp /agent.py /newroot/run/schedcp-agent.py || fail "cannot copy the agent"
exec switch_root /newroot $SCHEDCP_PYTHON -I -S /run/schedcp-agent.py --port "$SCHEDCP_PORT"
