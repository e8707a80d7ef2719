# SPDX-License-Identifier: LGPL-2.1-or-later
#
# A private NFS server for the tests: nfs-ganesha (FSAL VFS), NFSv4 only,
# bound to 127.0.0.1 on a free port, exporting one directory under $tmp,
# with no grace period and no rpcbind.  Sourced after tests/functions.sh:
#
#   source "$top_srcdir/tests/lib/nfs.sh"
#   nfs_start              # skips the test (exit 77) with the reason if
#                          # ganesha cannot run here; stopped at exit
#   url=$(nfs_url repo)    # nfs://127.0.0.1/<export>/repo?version=4&nfsport=N
#   $NFS_EXPORT/repo       # the same directory, seen locally
#   nfs_stop / nfs_start   # stop (by PID) and start again, same port
#   nfs_pause / nfs_resume # SIGSTOP / SIGCONT: a server that hangs
#   NFS_LEASE=N            # NFSv4 lease in seconds (default 60), before
#                          # nfs_start
#   NFS_VERSION=3          # also serve NFSv3 (MOUNT on $NFS_MNT_PORT), and
#                          # nfs_url gives v3 URLs; ganesha needs rpcbind
#                          # for that (tests/test-nfs-v3.sh, in a netns)
#
# The kernel here has no NFS client, so the export is also read and
# changed directly through $NFS_EXPORT (the server's own files).  Source it
# after nbd-plugin/plugin-functions.sh when both are used.

# A private copy of bootback (and of the plugin): a rebuild of the tree
# while a test runs must not swap them under it.
if [ -x "${BOOTBACK:-}" ]; then
    cp "$BOOTBACK" "$tmp/bootback" && BOOTBACK=$tmp/bootback
fi
if [ -n "${plugin:-}" ] && [ -f "$plugin" ]; then
    cp "$plugin" "$tmp/nbdkit-bootback-plugin.so" && plugin=$tmp/nbdkit-bootback-plugin.so
fi

# Under make check-valgrind, bootback and nbdkit also read the libnfs
# suppressions (a leak inside libnfs 4.0, see tests/lib/libnfs.supp);
# nbdkit keeps its own (nbd-plugin/nbdkit.supp).
if [ -n "${BOOTBACK_VALGRIND:-}" ]; then
    BOOTBACK_VG_ARGS+=("--suppressions=$top_srcdir/tests/lib/libnfs.supp")
    if [ -n "${NBDKIT+set}" ]; then
        NBDKIT=(valgrind "${BOOTBACK_VG_ARGS[@]}" --child-silent-after-fork=yes
                "--suppressions=$top_srcdir/nbd-plugin/nbdkit.supp" nbdkit)
    fi
fi

NFS_DIR=$tmp/nfs-server
NFS_EXPORT=$tmp/export
NFS_PORT=
NFS_MNT_PORT=
NFS_PID=
: "${NFS_VERSION:=4}"

_nfs_free_port () {
    python3 -c 'import socket
s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

_nfs_listening () {
    (exec 3<>"/dev/tcp/127.0.0.1/$NFS_PORT") 2>/dev/null
}

nfs_start () {
    local i
    command -v ganesha.nfsd >/dev/null 2>&1 ||
        skip "nfs-ganesha is not installed (make deps installs nfs-ganesha nfs-ganesha-vfs)"
    [ -e /usr/lib/x86_64-linux-gnu/ganesha/libfsalvfs.so ] ||
        ls /usr/lib/*/ganesha/libfsalvfs.so >/dev/null 2>&1 ||
        skip "nfs-ganesha-vfs (FSAL VFS) is not installed"
    [ "$(id -u)" -eq 0 ] || skip "nfs-ganesha's FSAL VFS needs root (open_by_handle_at)"
    mkdir -p "$NFS_DIR/recovery" "$NFS_EXPORT"
    [ -n "$NFS_PORT" ] || NFS_PORT=$(_nfs_free_port)
    local protocols=4 mnt=
    if [ "$NFS_VERSION" = 3 ]; then
        [ -n "$NFS_MNT_PORT" ] || NFS_MNT_PORT=$(_nfs_free_port)
        protocols="3, 4"
        mnt="MNT_Port = $NFS_MNT_PORT;"
    fi
    cat > "$NFS_DIR/ganesha.conf" <<EOF
NFS_CORE_PARAM {
    Bind_addr = 127.0.0.1;
    NFS_Port = $NFS_PORT;
    $mnt
    Protocols = $protocols;
    Enable_NLM = false;
    Enable_RQUOTA = false;
    Enable_UDP = false;
    Mount_Path_Pseudo = true;
}
NFSv4 {
    Graceless = true;
    Lease_Lifetime = ${NFS_LEASE:-60};
    RecoveryBackend = fs;
    RecoveryRoot = "$NFS_DIR/recovery";
}
NFS_KRB5 { Active_krb5 = false; }
# The tests also change the exported files directly (age, corrupt, copy):
# no attribute or directory caching in the server, so it sees them.
MDCACHE { Use_Getattr_Directory_Invalidation = true; }
EXPORT {
    Attr_Expiration_Time = 0;
    Export_Id = 1;
    Path = "$NFS_EXPORT";
    Pseudo = "$NFS_EXPORT";
    Access_Type = RW;
    Squash = No_Root_Squash;
    Protocols = $protocols;
    Transports = TCP;
    SecType = sys;
    FSAL { Name = VFS; }
}
EOF
    ganesha.nfsd -F -f "$NFS_DIR/ganesha.conf" -L "$NFS_DIR/ganesha.log" \
        -p "$NFS_DIR/ganesha.pid" -N NIV_EVENT &
    NFS_PID=$!
    if [ -z "${_nfs_cleanup_set:-}" ]; then
        cleanup_fn nfs_stop
        _nfs_cleanup_set=1
    fi
    for i in $(seq 100); do
        _nfs_listening && break
        if ! kill -0 "$NFS_PID" 2>/dev/null; then
            local why
            why=$(grep -E 'CRIT|FATAL|MAJ' "$NFS_DIR/ganesha.log" 2>/dev/null |
                  grep -v -i -e dbus -e krb5 -e keytab -e gssd | tail -1 | cut -d: -f5-)
            NFS_PID=
            skip "nfs-ganesha cannot run here:${why:- it exited at start (see $NFS_DIR/ganesha.log)}"
        fi
        sleep 0.1
    done
    _nfs_listening || skip "nfs-ganesha did not listen on 127.0.0.1:$NFS_PORT within 10 s"
    # It listens; can it export this directory (FSAL VFS needs file handles
    # from the file system under $tmp)?  A mount through bootback says.
    if [ -x "${BOOTBACK:-}" ] &&
       BOOTBACK_HOME="$NFS_DIR/probe" "$BOOTBACK" points --repo "$(nfs_url '')" \
           2>&1 | grep -q "^bootback: mount: "; then
        skip "nfs-ganesha cannot export $NFS_EXPORT here: $(BOOTBACK_HOME="$NFS_DIR/probe" \
              "$BOOTBACK" points --repo "$(nfs_url '')" 2>&1 | head -1)"
    fi
    echo "nfs-ganesha (pid $NFS_PID) serves $NFS_EXPORT on 127.0.0.1:$NFS_PORT"
}

# nfs_stop: stop the server by its PID (the socket closes at once).
nfs_stop () {
    local i
    [ -n "$NFS_PID" ] || return 0
    kill -CONT "$NFS_PID" 2>/dev/null || true
    kill "$NFS_PID" 2>/dev/null || true
    for i in $(seq 100); do
        kill -0 "$NFS_PID" 2>/dev/null || break
        sleep 0.1
    done
    kill -9 "$NFS_PID" 2>/dev/null || true
    wait "$NFS_PID" 2>/dev/null || true
    NFS_PID=
}

nfs_pause () { kill -STOP "$NFS_PID"; }
nfs_resume () { kill -CONT "$NFS_PID"; }

# nfs_url PATH [OPTIONS]: the URL of $NFS_EXPORT/PATH (extra libnfs
# options, e.g. "uid=65534", are appended).
nfs_url () {
    local v="version=4&nfsport=$NFS_PORT"
    [ "$NFS_VERSION" != 3 ] || v="version=3&nfsport=$NFS_PORT&mountport=$NFS_MNT_PORT"
    echo "nfs://127.0.0.1$NFS_EXPORT/$1?$v${2:+&$2}"
}
