# SPDX-License-Identifier: LGPL-2.1-or-later
#
# A private libvirtd for one test: its configuration, sockets, state and
# logs live under the test's $tmp, it never talks to (or needs) a system
# libvirtd, and it is stopped by PID at exit, after every domain and
# network it runs has been destroyed.  Source after tests/functions.sh:
#
#   source "$top_srcdir/tests/lib/libvirtd.sh"
#   libvirtd_start            start it; exports LIBVIRT_DEFAULT_URI (so plain
#                             `virsh` and libvirt clients use it), LIBVIRTD_DIR,
#                             LIBVIRTD_PID; skips the test (77) when libvirtd
#                             or virsh is missing or not root
#   libvirtd_stop             destroy all domains and networks, stop libvirtd
#                             (registered with cleanup_fn by libvirtd_start)
#   libvirtd_domain_pid NAME  the QEMU PID of a running domain
#   libvirtd_log              print libvirtd's log (for a failing test)
#   libvirtd_shutdown DOM SECS  ACPI shutdown; fail unless DOM is shut off
#                             within SECS seconds
#
# How it is private.  A root libvirtd ("qemu:///system") takes its paths
# from the build: /etc/libvirt (libvirtd.conf, qemu.conf, persistent
# domains and networks, autostart links), /run/libvirt (sockets, pid files,
# running-domain status), /var/lib/libvirt (monitor sockets, channels,
# dnsmasq), /var/cache/libvirt (the QEMU capabilities cache) and
# /var/log/libvirt (QEMU logs).  `libvirtd -f CONF` moves only libvirtd.conf
# itself; in it, unix_sock_dir moves the sockets and log_outputs the daemon
# log, but qemu.conf and every state directory stay at their fixed paths
# (there is no option for them).  So libvirtd runs in its own mount
# namespace (unshare -m, private propagation) where each of those five
# directories is a bind mount of a directory under $LIBVIRTD_DIR: the
# host's copies are neither read nor written (so, also, the system's
# defined domains and its autostarted "default" network are invisible),
# and two tests can each run their own libvirtd at once.  QEMU processes
# inherit the namespace; paths outside those five directories (disk images,
# logs in $tmp) are the same for them as for the test.  Only
# /var/cache/libvirt is shared between tests, from
# $BOOTBACK_LIBVIRT_CACHE (default $top_srcdir/tests/tmp/libvirt-cache), so
# the capability probe (~8 s) happens once, not per test.
#
# Layout: $LIBVIRTD_DIR/etc (libvirtd.conf, qemu.conf), run/ (libvirt-sock,
# qemu/NAME.pid, ...), lib/, log/ (libvirtd.log, qemu/NAME.log).
#
# Limits found: /run/libvirt must exist as a mount point on the host (an
# empty directory is created if missing); the user libvirt-qemu must exist
# even though QEMU runs as root (qemu.conf user/group = root, no security
# driver, no cgroups, dynamic_ownership 0, stdio_handler "file" so no
# virtlogd is needed); there is no systemd, D-Bus or machined, so libvirt's
# machined registration is skipped; killing libvirtd would leave QEMU and
# dnsmasq running, hence libvirtd_stop destroys them first and then kills
# any PID left in run/qemu/*.pid and run/network/*.pid.  libvirtd runs under
# tests/lib/subreaper.py, which reaps exited QEMUs at once as systemd would
# (this machine's PID 1 takes 1-2 s, and `virsh destroy` waits for it).

libvirtd_start () {
    local d cache i
    _libvirtd_requires
    d=$tmp/libvirtd
    cache=${BOOTBACK_LIBVIRT_CACHE:-$top_srcdir/tests/tmp/libvirt-cache}
    _libvirtd_dirs "$d" "$cache"
    cat >"$d/etc/libvirtd.conf" <<EOF
unix_sock_dir = "$d/run"
unix_sock_group = "root"
unix_sock_ro_perms = "0770"
unix_sock_rw_perms = "0770"
unix_sock_admin_perms = "0700"
auth_unix_ro = "none"
auth_unix_rw = "none"
log_outputs = "3:file:$d/log/libvirtd.log"
EOF
    _libvirtd_qemu_conf "$d"
    _libvirtd_spawn "$d" "$cache" "" "" || { cat "$d/log/libvirtd.log" 2>/dev/null; fail "libvirtd did not start"; }
    LIBVIRTD_DIR=$d
    LIBVIRTD_PID=$(cat "$d/libvirtd.pid")
    LIBVIRT_DEFAULT_URI="qemu+unix:///system?socket=$d/run/libvirt-sock"
    export LIBVIRTD_DIR LIBVIRTD_PID LIBVIRT_DEFAULT_URI
    cleanup_fn libvirtd_stop
    # Wait until it answers (the first start probes QEMU's capabilities).
    for (( i = 0; i < 300; i++ )); do
        virsh -q version >/dev/null 2>&1 && return 0
        kill -0 "$LIBVIRTD_PID" 2>/dev/null || { libvirtd_log; fail "libvirtd exited"; }
        sleep 0.1
    done
    libvirtd_log
    fail "libvirtd does not answer on $LIBVIRT_DEFAULT_URI"
}

_libvirtd_requires () {
    [ "$(id -u)" -eq 0 ] || skip "libvirtd_start needs root"
    command -v libvirtd >/dev/null || skip "libvirtd is not installed"
    command -v virsh >/dev/null || skip "virsh is not installed"
    command -v unshare >/dev/null || skip "unshare is not installed"
    id libvirt-qemu >/dev/null 2>&1 ||
        skip "user libvirt-qemu missing (libvirt-daemon-system not installed)"
}

# _libvirtd_dirs DIR CACHE: the layout under DIR (see above).
_libvirtd_dirs () {
    mkdir -p "$1"/etc/qemu/networks/autostart "$1"/etc/qemu/autostart \
             "$1"/run "$1"/lib "$1"/log/qemu "$2"
    # libvirt.conf for clients that run inside the namespace (none today).
    : >"$1/etc/libvirt.conf"
    [ -d /run/libvirt ] || mkdir -p /run/libvirt
}

# _libvirtd_qemu_conf DIR [LINE...]: DIR/etc/qemu.conf, QEMU as root with
# no security driver or cgroups, plus the LINEs given.
_libvirtd_qemu_conf () {
    local d=$1; shift
    cat >"$d/etc/qemu.conf" <<EOF
user = "root"
group = "root"
dynamic_ownership = 0
remember_owner = 0
security_driver = "none"
cgroup_controllers = [ ]
stdio_handler = "file"
EOF
    [ $# = 0 ] || printf '%s\n' "$@" >>"$d/etc/qemu.conf"
}

# _libvirtd_spawn DIR CACHE NETNS HIDE [LIBVIRTD-ARG...]: start libvirtd
# with DIR/etc/libvirtd.conf in a mount namespace of its own where
# libvirt's five directories are DIR's; in the network namespace NETNS and
# with an empty tmpfs over the directory HIDE, each if not empty.
_libvirtd_spawn () {
    local d=$1 cache=$2 ns=$3 hide=$4; shift 4
    local -a pre=()
    [ -z "$ns" ] || pre=(ip netns exec "$ns")
    "${pre[@]}" unshare -m --propagation private -- /bin/sh -e -c '
        d=$1 cache=$2 reaper=$3 hide=$4; shift 4
        mount --bind "$d/etc" /etc/libvirt
        mount --bind "$d/run" /run/libvirt
        mount --bind "$d/lib" /var/lib/libvirt
        mount --bind "$cache" /var/cache/libvirt
        mount --bind "$d/log" /var/log/libvirt
        [ -z "$hide" ] || mount -t tmpfs -o mode=0700 tmpfs "$hide"
        exec python3 "$reaper" libvirtd -d -f "$d/etc/libvirtd.conf" -p "$d/libvirtd.pid" "$@"
    ' sh "$d" "$cache" "$top_srcdir/tests/lib/subreaper.py" "$hide" "$@"
}

libvirtd_domain_pid () {
    cat "$LIBVIRTD_DIR/run/qemu/$1.pid"
}

libvirtd_shutdown () {
    local dom=$1 secs=$2 i
    virsh -q shutdown "$dom" --mode acpi >/dev/null
    for (( i = 0; i < secs * 2; i++ )); do
        [ "$(virsh -q domstate "$dom")" = "shut off" ] && return 0
        sleep 0.5
    done
    fail "$dom: ACPI shutdown did not power off within $secs s"
}

libvirtd_log () {
    cat "$LIBVIRTD_DIR/log/libvirtd.log" 2>/dev/null || true
}

libvirtd_stop () {
    [ -n "${LIBVIRTD_PID:-}" ] || return 0
    _libvirtd_kill "$LIBVIRT_DEFAULT_URI" "$LIBVIRTD_PID" "$LIBVIRTD_DIR"
    LIBVIRTD_PID=
    return 0
}

# _libvirtd_kill URI PID DIR: destroy the domains and networks of the
# libvirtd PID (at URI, its layout in DIR), stop it, then kill by PID
# whatever it left running (QEMU, dnsmasq).
_libvirtd_kill () {
    local uri=$1 pid=$2 d=$3 dom net f p i
    if kill -0 "$pid" 2>/dev/null; then
        for dom in $(virsh -c "$uri" -q list --name 2>/dev/null); do
            virsh -c "$uri" -q destroy "$dom" >/dev/null 2>&1
        done
        for net in $(virsh -c "$uri" -q net-list --name 2>/dev/null); do
            virsh -c "$uri" -q net-destroy "$net" >/dev/null 2>&1
        done
        kill "$pid" 2>/dev/null
        for (( i = 0; i < 100; i++ )); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        kill -9 "$pid" 2>/dev/null
    fi
    for f in "$d"/run/qemu/*.pid "$d"/run/network/*.pid; do
        [ -f "$f" ] || continue
        p=$(cat "$f" 2>/dev/null) || continue
        case "$(cat "/proc/$p/comm" 2>/dev/null)" in
            qemu*|dnsmasq) kill -9 "$p" 2>/dev/null ;;
        esac
    done
    return 0
}
