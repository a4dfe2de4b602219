#!/bin/sh
# CPU hogs in two cgroups with different cpu.weight; report the CPU time each cgroup got.
#
# usage: cgroup_hogs.sh [WEIGHT_A WEIGHT_B HOGS_PER_GROUP SECONDS]
#        (defaults: 100 300 2 10)
#
# Creates /sys/fs/cgroup/schedcp_a and schedcp_b (cgroup2, cpu controller enabled in the
# root's subtree_control), sets their cpu.weight, starts HOGS_PER_GROUP stress-ng CPU hogs
# in each, lets them run SECONDS, and prints one line per cgroup with its weight and the
# CPU time it received (usage_usec from cpu.stat, measured over the window only), then the
# share of group b and the share its weight asks for. Use more hogs than CPUs in total,
# else every hog gets a whole CPU whatever the weights. Both cgroups are removed at exit.
# Exit status: 0 if both groups got CPU time, 1 otherwise, 2 on a usage or setup error.
set -u

weight_a=${1:-100}
weight_b=${2:-300}
hogs=${3:-2}
secs=${4:-10}
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

pids=""
cleanup() {
	for g in a b; do
		# cgroup.kill (Linux 5.14+) SIGKILLs everything in the group, workers included.
		[ -f "$root/schedcp_$g/cgroup.kill" ] && echo 1 >"$root/schedcp_$g/cgroup.kill"
	done
	for pid in $pids; do
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
}
trap cleanup EXIT

usage_usec() {
	awk '$1 == "usage_usec" { print $2 }' "$root/schedcp_$1/cpu.stat"
}

for g in a b; do
	mkdir -p "$root/schedcp_$g" || exit 2
done
echo "$weight_a" >"$root/schedcp_a/cpu.weight" || exit 2
echo "$weight_b" >"$root/schedcp_b/cpu.weight" || exit 2

# Each hog group: a shell that moves itself into the cgroup, then becomes stress-ng, whose
# workers inherit the cgroup.
for g in a b; do
	sh -c 'echo $$ >"$1/cgroup.procs" && exec stress-ng --cpu "$2" --cpu-method int64 \
		--timeout "$3s" --temp-path /tmp -q' sh "$root/schedcp_$g" "$hogs" "$((secs + 60))" &
	pids="$pids $!"
done

# Wait (at most 30 s: forking is slow under emulation) until every hog runs in its group.
tries=0
while :; do
	na=$(wc -l <"$root/schedcp_a/cgroup.procs")
	nb=$(wc -l <"$root/schedcp_b/cgroup.procs")
	# stress-ng's parent plus its workers
	[ "$na" -gt "$hogs" ] && [ "$nb" -gt "$hogs" ] && break
	tries=$((tries + 1))
	if [ "$tries" -gt 600 ]; then
		echo "cgroup_hogs.sh: hogs did not start within 30 s (a: $na, b: $nb processes)" >&2
		exit 2
	fi
	sleep 0.05
done

a0=$(usage_usec a)
b0=$(usage_usec b)
sleep "$secs"
a1=$(usage_usec a)
b1=$(usage_usec b)

da=$((a1 - a0))
db=$((b1 - b0))
echo "group a: cpu.weight $weight_a, $hogs hogs, cpu_usec $da"
echo "group b: cpu.weight $weight_b, $hogs hogs, cpu_usec $db"
awk -v da="$da" -v db="$db" -v wa="$weight_a" -v wb="$weight_b" 'BEGIN {
	if (da + db > 0)
		printf "share of b: %.3f (weights ask for %.3f)\n", db / (da + db), wb / (wa + wb)
}'
[ "$da" -gt 0 ] && [ "$db" -gt 0 ]
