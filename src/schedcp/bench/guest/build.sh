#!/bin/sh
# Guest side of the `build` benchmark: unpack a source tarball into the guest's tmpfs (not
# timed), then time one parallel build and print {"wall_s": ..., "jobs": N} on stdout.
# usage: build.sh TARBALL JOBS CONFIGURE_CMD MAKE_TARGET...
# CONFIGURE_CMD ("-" for none) runs in the source root before the timed build.
set -eu
tarball=$1 jobs=$2 configure=$3
shift 3
work=$(mktemp -d /tmp/schedcp-build.XXXXXX)
trap 'rm -rf "$work"' EXIT
tar -xf "$tarball" -C "$work"
src=$(find "$work" -mindepth 1 -maxdepth 1 -type d | head -n 1)
cd "$src"
if [ "$configure" != "-" ]; then sh -c "$configure" > "$work/configure.log" 2>&1 || { cat "$work/configure.log" >&2; exit 1; }; fi
start=$(date +%s.%N)
if ! make -j"$jobs" "$@" > "$work/build.log" 2>&1; then
    tail -n 40 "$work/build.log" >&2
    exit 1
fi
end=$(date +%s.%N)
printf '{"wall_s": %s, "jobs": %s}\n' "$(echo "$end - $start" | awk '{print $1 - $3}')" "$jobs"
