#!/bin/sh
# CPU hogs in two cgroups with different cpu.weight; report the CPU time and the work each
# cgroup got.
#
# usage: cgroup_hogs.sh [WEIGHT_A WEIGHT_B HOGS_A SECONDS [HOGS_B]]
#        (defaults: 100 300 2 10; HOGS_B defaults to HOGS_A)
#
# Creates /sys/fs/cgroup/schedcp_a and schedcp_b (cgroup2, cpu controller enabled in the
# root's subtree_control), sets their cpu.weight, starts HOGS_A stress-ng CPU hogs in a and
# HOGS_B in b, waits until all of them run, lets them run SECONDS, then stops both stress-ngs
# with SIGINT so each prints its --metrics-brief rows. Output on stdout:
#
#   cpus 2
#   window_s 10.02
#   group a: cpu.weight 100, 4 hogs, cpu_usec 5012345
#   group b: cpu.weight 300, 2 hogs, cpu_usec 14987654
#   share of b: 0.749 (weights ask for 0.750)
#   --- group a stress-ng ---
#   (stress-ng's own output for group a, with its "cpu" bogo-ops row)
#   --- group b stress-ng ---
#   (the same for group b)
#
# cpu_usec is usage_usec from the group's cpu.stat over the window only (the kernel accounts
# it whatever the scheduling class). The stress-ng rows cover each stress-ng's whole life,
# from its start (before the window, while the hogs are forked) until the SIGINT after it.
# Use more hogs than CPUs in total, else every hog gets a whole CPU whatever the weights.
# Both cgroups are removed at exit.
# Exit status: 0 if both groups got CPU time and both stress-ngs ended cleanly, 1 otherwise,
# 2 on a usage or setup error.
set -u

weight_a=${1:-100}
weight_b=${2:-300}
hogs_a=${3:-2}
secs=${4:-10}
hogs_b=${5:-$hogs_a}
root=/sys/fs/cgroup

if [ ! -f "$root/cgroup.subtree_control" ]; then
	echo "cgroup_hogs.sh: no cgroup2 hierarchy at $root" >&2
	exit 2
fi
if ! grep -qw cpu "$root/cgroup.subtree_control"; then
	if ! echo +cpu >"$root/cgroup.subtree_control"; then
		echo "cgroup_hogs.sh: cannot enable the cpu controller in $root" >&2
		exit 2
	fi
fi

logdir=$(mktemp -d /tmp/cgroup-hogs.XXXXXX) || exit 2
pid_a=""
pid_b=""
cleanup() {
	for g in a b; do
		# cgroup.kill (Linux 5.14+) SIGKILLs everything in the group, workers included.
		[ -f "$root/schedcp_$g/cgroup.kill" ] && echo 1 >"$root/schedcp_$g/cgroup.kill"
	done
	for pid in $pid_a $pid_b; do
		kill -KILL "$pid" 2>/dev/null
	done
	wait 2>/dev/null
	for g in a b; do
		# Killed processes not yet gone keep rmdir failing for a moment.
		for _ in 1 2 3 4 5 6 7 8 9 10; do
			rmdir "$root/schedcp_$g" 2>/dev/null && break
			[ -d "$root/schedcp_$g" ] || break
			sleep 0.2
		done
	done
	rm -rf "$logdir"
}
trap cleanup EXIT

usage_usec() {
	awk '$1 == "usage_usec" { print $2 }' "$root/schedcp_$1/cpu.stat"
}

uptime_s() {
	awk '{ print $1 }' /proc/uptime
}

for g in a b; do
	mkdir -p "$root/schedcp_$g" || exit 2
done
echo "$weight_a" >"$root/schedcp_a/cpu.weight" || exit 2
echo "$weight_b" >"$root/schedcp_b/cpu.weight" || exit 2

# Each hog group: a shell that moves itself into the cgroup, then becomes stress-ng (so $! is
# stress-ng's pid), whose workers inherit the cgroup. The timeout is only a backstop.
start_hogs() {
	sh -c 'echo $$ >"$1/cgroup.procs" && exec stress-ng --cpu "$2" --cpu-method int64 \
		--timeout "$3s" --metrics-brief --temp-path /tmp' \
		sh "$root/schedcp_$1" "$2" "$((secs + 60))" >"$logdir/$1" 2>&1 &
}
start_hogs a "$hogs_a"
pid_a=$!
start_hogs b "$hogs_b"
pid_b=$!

# Wait (at most 30 s: forking is slow under emulation) until every hog runs in its group.
tries=0
while :; do
	na=$(wc -l <"$root/schedcp_a/cgroup.procs")
	nb=$(wc -l <"$root/schedcp_b/cgroup.procs")
	# stress-ng's parent plus its workers
	[ "$na" -gt "$hogs_a" ] && [ "$nb" -gt "$hogs_b" ] && break
	tries=$((tries + 1))
	if [ "$tries" -gt 600 ]; then
		echo "cgroup_hogs.sh: hogs did not start within 30 s (a: $na, b: $nb processes)" >&2
		cat "$logdir/a" "$logdir/b" >&2
		exit 2
	fi
	sleep 0.05
done

t0=$(uptime_s)
a0=$(usage_usec a)
b0=$(usage_usec b)
sleep "$secs"
a1=$(usage_usec a)
b1=$(usage_usec b)
t1=$(uptime_s)

kill -INT "$pid_a" "$pid_b" 2>/dev/null
wait "$pid_a"
rc_a=$?
wait "$pid_b"
rc_b=$?
pid_a=""
pid_b=""

da=$((a1 - a0))
db=$((b1 - b0))
echo "cpus $(nproc)"
awk -v t0="$t0" -v t1="$t1" 'BEGIN { printf "window_s %.2f\n", t1 - t0 }'
echo "group a: cpu.weight $weight_a, $hogs_a hogs, cpu_usec $da"
echo "group b: cpu.weight $weight_b, $hogs_b hogs, cpu_usec $db"
awk -v da="$da" -v db="$db" -v wa="$weight_a" -v wb="$weight_b" 'BEGIN {
	if (da + db > 0)
		printf "share of b: %.3f (weights ask for %.3f)\n", db / (da + db), wb / (wa + wb)
}'
for g in a b; do
	echo "--- group $g stress-ng ---"
	cat "$logdir/$g"
done

status=0
for rc in "$rc_a" "$rc_b"; do
	if [ "$rc" -ne 0 ]; then
		echo "cgroup_hogs.sh: stress-ng exited with status $rc" >&2
		status=1
	fi
done
[ "$da" -gt 0 ] && [ "$db" -gt 0 ] || status=1
exit "$status"
