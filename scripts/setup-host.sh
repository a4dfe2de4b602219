#!/usr/bin/env bash
# Install what schedcp needs on a Debian 12 host and fetch the sched_ext kernel for the sandbox.
#
# Idempotent: a second run checks each step and does nothing when it is already done.
# Never touches the host's /boot: the sandbox kernel is unpacked into a cache folder.
# The Debian mirror is read from the machine's own apt configuration, never written here.
set -euo pipefail

CACHE=${SCHEDCP_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/schedcp}
SOURCES=/etc/apt/sources.list.d/schedcp.sources
PREFS=/etc/apt/preferences.d/schedcp
# postgresql: the repository's tests run its PostgreSQL backend against a throwaway server.
# Debian packages from bookworm (clang-19 etc.) and from bookworm-backports (QEMU 10:
# bookworm's QEMU 7.2 crashes guests when a sched_ext scheduler attaches under MTTCG).
BOOKWORM_PKGS=(clang-19 llvm-19 busybox-static stress-ng kmod zstd linux-perf rt-tests make gcc libc6-dev
    dpkg-dev xz-utils gzip postgresql)
BACKPORTS_PKGS=(qemu-system-x86 bpftool libbpf-dev libbpf1)
MIN_QEMU_MAJOR=10

log() { printf 'setup: %s\n' "$*" >&2; }
die() { printf 'setup: error: %s\n' "$*" >&2; exit 1; }

as_root() {
    if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

# The URI of the machine's Debian source that serves bookworm (deb822 or one-line format).
debian_uri() {
    local f
    for f in /etc/apt/sources.list.d/*.sources; do
        [ -e "$f" ] && [ "$f" != "$SOURCES" ] || continue
        awk '
            function flush() { if (ok && uri != "" && !done) { print uri; done=1 } ok=0; uri="" }
            /^[[:space:]]*$/ { flush(); next }
            /^URIs:/ { uri=$2 }
            /^Suites:/ { for (i=2;i<=NF;i++) if ($i=="bookworm") ok=1 }
            END { flush() }' "$f"
    done
    for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
        [ -e "$f" ] || continue
        sed -E 's/\[[^]]*\]//' "$f" | awk '$1=="deb" && $3=="bookworm" {print $2}'
    done
}

ensure_apt_sources() {
    local uri
    uri=$(debian_uri | head -n1)
    [ -n "$uri" ] || die "no Debian bookworm source in /etc/apt; add one (the machine's mirror) and run again"
    local want
    # deb-src for bookworm: the build benchmark compiles a real Debian source package.
    want=$(printf 'Types: deb\nURIs: %s\nSuites: bookworm-backports trixie-backports\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n\nTypes: deb-src\nURIs: %s\nSuites: bookworm\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n' "$uri" "$uri")
    # bookworm-backports at the backports default (100: only what we ask for by -t);
    # trixie-backports never installs anything (-1): we only `apt-get download` the kernel from it.
    local prefs
    prefs=$(printf 'Package: *\nPin: release n=bookworm-backports\nPin-Priority: 100\n\nPackage: *\nPin: release n=trixie-backports\nPin-Priority: -1\n')
    if [ "$(cat "$SOURCES" 2>/dev/null)" != "$want" ] || [ "$(cat "$PREFS" 2>/dev/null)" != "$prefs" ]; then
        log "adding bookworm-backports and trixie-backports (pinned) to apt"
        printf '%s\n' "$want" | as_root tee "$SOURCES" >/dev/null
        printf '%s\n' "$prefs" | as_root tee "$PREFS" >/dev/null
        as_root apt-get update -q
    elif ! compgen -G '/var/lib/apt/lists/*trixie-backports*Packages*' >/dev/null \
        || ! compgen -G '/var/lib/apt/lists/*bookworm_main_source_Sources*' >/dev/null; then
        as_root apt-get update -q
    fi
}

qemu_major() {
    qemu-system-x86_64 --version 2>/dev/null | sed -nE 's/^QEMU emulator version ([0-9]+).*/\1/p'
}

ensure_packages() {
    local missing=() p
    for p in "${BOOKWORM_PKGS[@]}" "${BACKPORTS_PKGS[@]}"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
    done
    local major
    major=$(qemu_major || true)
    if [ "${#missing[@]}" -eq 0 ] && [ "${major:-0}" -ge "$MIN_QEMU_MAJOR" ]; then
        return 0
    fi
    log "installing Debian packages: ${missing[*]:-(qemu upgrade)}"
    export DEBIAN_FRONTEND=noninteractive
    as_root apt-get install -y -q --no-install-recommends "${BOOKWORM_PKGS[@]}"
    as_root apt-get install -y -q --no-install-recommends -t bookworm-backports "${BACKPORTS_PKGS[@]}"
    major=$(qemu_major || true)
    [ "${major:-0}" -ge "$MIN_QEMU_MAJOR" ] || die "QEMU $major installed, need >= $MIN_QEMU_MAJOR from bookworm-backports"
}

# Newest 7.x sched_ext kernel in trixie-backports, as "<abi> <version>", e.g. "7.3.4+deb13-amd64 7.3.4-1~bpo13+1".
# Picked by query, so a newer 7.x in the suite is used without editing this file.
pick_kernel() {
    local names
    names=$(apt-cache pkgnames linux-binary- | grep -E '^linux-binary-([7-9]|[1-9][0-9])\.[0-9.]+\+deb[0-9]+-amd64$' || true)
    [ -n "$names" ] || die "no linux-binary-7.x kernel found in trixie-backports; check that apt lists trixie-backports"
    local name ver src best_abi="" best_ver=""
    # One madison call for all candidates: each apt-cache start costs ~0.5 s on this index.
    while IFS='|' read -r name ver src; do
        name=${name// /}; ver=${ver// /}
        case "$src" in *trixie-backports*) ;; *) continue ;; esac
        if [ -z "$best_ver" ] || dpkg --compare-versions "$ver" gt "$best_ver"; then
            best_abi=${name#linux-binary-}; best_ver=$ver
        fi
    done < <(apt-cache madison $names)
    [ -n "$best_abi" ] || die "no linux-binary-7.x kernel from trixie-backports in apt's lists"
    printf '%s %s\n' "$best_abi" "$best_ver"
}

# Decompress the bzImage's zstd payload into the plain ELF vmlinux: it boots faster (PVH entry)
# and carries the BTF that vmlinux.h is generated from.
extract_elf() {
    local bz=$1 out=$2 off
    off=$(grep -abo "$(printf '\x28\xb5\x2f\xfd')" "$bz" | head -n1 | cut -d: -f1)
    [ -n "$off" ] || die "no zstd payload in $bz"
    tail -c +"$((off + 1))" "$bz" | zstd -d -q -c 2>/dev/null > "$out.tmp" || true
    head -c 4 "$out.tmp" | grep -q 'ELF' || die "decompressing $bz did not give an ELF"
    mv "$out.tmp" "$out"
}

ensure_kernel() {
    local abi ver dir
    read -r abi ver < <(pick_kernel)
    dir="$CACHE/kernels/$abi"
    if [ -f "$dir/.complete" ]; then
        log "sandbox kernel $abi ready in $dir"
        return 0
    fi
    log "fetching sandbox kernel $abi ($ver) into $dir"
    rm -rf "$dir.partial"
    mkdir -p "$dir.partial/debs"
    (cd "$dir.partial/debs" && apt-get download -q \
        "linux-binary-$abi=$ver" "linux-base-$abi=$ver" "linux-modules-$abi=$ver")
    local deb
    for deb in "$dir.partial"/debs/*.deb; do dpkg-deb -x "$deb" "$dir.partial/root"; done
    local mods="$dir.partial/root/usr/lib/modules/$abi"
    [ -d "$mods" ] || die "kernel packages did not contain usr/lib/modules/$abi"
    local cfg=""
    for cfg in "$mods/config" "$dir.partial/root/boot/config-$abi"; do [ -f "$cfg" ] && break; done
    [ -f "$cfg" ] || die "no kernel config in the $abi packages"
    grep -qx 'CONFIG_SCHED_CLASS_EXT=y' "$cfg" || die "kernel $abi does not have CONFIG_SCHED_CLASS_EXT=y"
    local bz=""
    for bz in "$mods/vmlinuz" "$dir.partial/root/boot/vmlinuz-$abi"; do [ -f "$bz" ] && break; done
    [ -f "$bz" ] || die "no vmlinuz in the $abi packages"
    extract_elf "$bz" "$dir.partial/vmlinux"
    depmod -b "$dir.partial/root/usr" "$abi"
    rm -rf "$dir.partial/debs"
    printf '%s\n' "$ver" > "$dir.partial/VERSION"
    touch "$dir.partial/.complete"
    rm -rf "$dir"
    mv "$dir.partial" "$dir"
    log "sandbox kernel $abi ready in $dir"
}

# Source packages the benchmarks build (the `build` workload): fetched, not installed.
BENCH_SOURCES=(lua5.4)

ensure_bench_sources() {
    local pkg dir
    for pkg in "${BENCH_SOURCES[@]}"; do
        dir="$CACHE/sources/$pkg"
        compgen -G "$dir/*.orig.tar.*" >/dev/null && continue
        log "fetching the $pkg source package for the build benchmark"
        rm -rf "$dir.partial" && mkdir -p "$dir.partial"
        (cd "$dir.partial" && apt-get source --download-only -q "$pkg")
        compgen -G "$dir.partial/*.orig.tar.*" >/dev/null || die "apt-get source $pkg gave no upstream tarball"
        rm -rf "$dir" && mv "$dir.partial" "$dir"
    done
}

# Only with --full: what `--size full` of the build benchmark needs (a Linux kernel build).
ensure_full_build_deps() {
    local missing=() p
    for p in linux-source flex bison bc libelf-dev libssl-dev; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
    done
    [ "${#missing[@]}" -eq 0 ] && return 0
    log "installing the full-size build benchmark's packages: ${missing[*]}"
    DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -q --no-install-recommends "${missing[@]}"
}

main() {
    [ -r /etc/debian_version ] || die "this setup supports Debian 12 hosts only"
    ensure_apt_sources
    ensure_packages
    ensure_kernel
    ensure_bench_sources
    if [ "${1:-}" = "--full" ]; then ensure_full_build_deps; fi
}

main "$@"
