#!/bin/sh
# Run a command beside stress-ng CPU hogs, so it competes with batch work for the CPUs.
#
# usage: with_cpu_hogs.sh HOGS MAX_SECONDS -- COMMAND [ARG...]
#
# Starts `stress-ng --cpu HOGS` (HOGS 0: one per online CPU), waits until its HOGS workers
# exist, runs COMMAND in the foreground, then stops the hogs with SIGINT, which makes
# stress-ng print its metrics for the time it actually ran. MAX_SECONDS is only a backstop for the hogs' own timeout.
# COMMAND's stdout and stderr pass through unchanged; stress-ng's output follows on stderr
# (its metrics lines start with "stress-ng: metrc:" in 0.15, "stress-ng: info:" in older
# versions). The exit status is COMMAND's if it failed, else stress-ng's.
set -u

if [ $# -lt 4 ] || [ "$3" != "--" ]; then
	echo "usage: with_cpu_hogs.sh HOGS MAX_SECONDS -- COMMAND [ARG...]" >&2
	exit 2
fi
hogs=$1
max_s=$2
shift 3
if [ "$hogs" -eq 0 ]; then
	hogs=$(nproc)
fi

log=$(mktemp /tmp/cpu-hogs.XXXXXX) || exit 1
trap 'rm -f "$log"' EXIT

# A fixed integer method: the default ("all") cycles through methods of very different
# cost per bogo op, so bogo-ops/s would depend on where in the cycle the run stopped.
stress-ng --cpu "$hogs" --cpu-method int64 --timeout "${max_s}s" --metrics-brief \
	--temp-path /tmp >"$log" 2>&1 &
hog_pid=$!

# Wait (at most 30 s: forking is slow under emulation) until every hog is running.
tries=0
while :; do
	running=$(pgrep -c -P "$hog_pid" 2>/dev/null)
	[ "${running:-0}" -ge "$hogs" ] && break
	if ! kill -0 "$hog_pid" 2>/dev/null; then
		echo "with_cpu_hogs.sh: stress-ng exited before its hogs started" >&2
		cat "$log" >&2
		exit 1
	fi
	tries=$((tries + 1))
	if [ "$tries" -gt 600 ]; then
		echo "with_cpu_hogs.sh: the $hogs stress-ng hogs did not start within 30 s" >&2
		kill -KILL "$hog_pid" 2>/dev/null
		exit 1
	fi
	sleep 0.05
done

"$@"
rc=$?

kill -INT "$hog_pid" 2>/dev/null
wait "$hog_pid"
hog_rc=$?
cat "$log" >&2

if [ "$rc" -ne 0 ]; then
	exit "$rc"
fi
if [ "$hog_rc" -ne 0 ]; then
	echo "with_cpu_hogs.sh: stress-ng exited with status $hog_rc" >&2
	exit "$hog_rc"
fi
exit 0
