# SPDX-License-Identifier: LGPL-2.1-or-later
#
# A "remote" hypervisor host for one test, on this machine: a private
# libvirtd (tests/lib/libvirtd.sh) in network and mount namespaces of its
# own, joined to the test (which plays the backup server) by a veth pair.
# The backup server is $REMOTE_SERVER_ADDR, the remote host $REMOTE_ADDR,
# a /30 of 10.201.0.0/16 no other test uses; nothing else routes there.
# Source after tests/functions.sh and tests/lib/libvirtd.sh:
#
#   remote_host_start      start it (skips the test, 77, without root,
#                          libvirtd or iproute2).  Sets and exports:
#     REMOTE_ADDR          the remote host's address
#     REMOTE_SERVER_ADDR   the backup server's address, as the remote sees it
#     REMOTE_URI           qemu+tls://REMOTE_ADDR/system?pkipath=REMOTE_TLS
#     REMOTE_TCP_URI       qemu+tcp:// to the same libvirtd, no auth (tests)
#     REMOTE_TLS           the backup server's certificates, of `bootback
#                          tls init` (the CA and its key, a server
#                          certificate for REMOTE_SERVER_ADDR and
#                          localhost, the client certificate
#                          CN=bootback-server)
#     REMOTE_DIR           the remote host's own directory, with its
#                          storage pool "default" (REMOTE_DIR/pool) and
#                          its certificates (REMOTE_DIR/tls), of `bootback
#                          tls host h2 REMOTE_ADDR`: the CA's certificate
#                          (no key), a server certificate for REMOTE_ADDR,
#                          its QEMU's client certificate
#                          CN=bootback-qemu-h2, never the backup server's
#     REMOTE_NETNS         its network namespace
#   remote_sshd_start     an sshd on REMOTE_ADDR:22 in the remote's network
#                          namespace and in a mount namespace of its own
#                          (the test's $tmp an empty tmpfs, /run/netns a
#                          private tmpfs: the network namespaces made over
#                          ssh are the remote's only); a host key and a
#                          client key of this test.  Sets and exports:
#     BOOTBACK_SSH_CONFIG  an ssh_config with the client key, the host key
#                          pinned (StrictHostKeyChecking yes), User root
#     REMOTE_SSH           root@REMOTE_ADDR (for host add --ssh)
#   remote_ssh CMD...      run CMD on the remote through that sshd, as
#                          bootback does (its namespaces, not the test's)
#   remote_exec CMD...     run CMD in the remote's network namespace
#   remote_link down|up    cut (or restore) the network between the test
#                          and the remote: the remote is unreachable
#   remote_log             print the remote libvirtd's log
#   remote_host_stop       destroy its domains, stop it, remove the veth and
#                          the namespace (registered with cleanup_fn)
#
# What the remote can see.  Its QEMU and libvirtd run in a mount namespace
# where the test's $tmp (the repository, $BOOTBACK_HOME, the backup
# server's files) is an empty tmpfs, so a disk or file path of the backup
# server handed to the remote fails as it would between two machines:
# what the remote reads of a restore point must come over the network
# (NBD over TLS).  REMOTE_DIR is outside $tmp, so the remote sees it.
# The rest of the file system (the source tree, images/) is shared; tests
# must not lean on that.
#
# TLS.  Its libvirtd listens with TLS on REMOTE_ADDR:16514 and accepts
# only the backup server's client certificate (tls_allowed_dn_list
# "O=bootback,CN=bootback-server", as README.md says to set it), and its
# qemu.conf sets default_tls_x509_cert_dir to REMOTE_DIR/tls with
# verification on, which QEMU uses for every TLS NBD connection it makes
# or serves (a disk <source protocol='nbd' tls='yes'>, a pull-mode
# backup's NBD server): both ends must present certificates of the CA.

remote_host_start () {
    local n i
    _libvirtd_requires
    command -v ip >/dev/null || skip "iproute2 is not installed"
    for (( i = 0; i < 64; i++ )); do
        n=$(( ($$ + i) % 16384 ))
        REMOTE_SERVER_ADDR=10.201.$(( n / 64 )).$(( n % 64 * 4 + 1 ))
        REMOTE_ADDR=10.201.$(( n / 64 )).$(( n % 64 * 4 + 2 ))
        grep -q " inet $REMOTE_SERVER_ADDR/" <<< "$(ip -4 -o addr show)" || break
    done
    REMOTE_NETNS=bootback-r$$
    REMOTE_DIR=$(mktemp -d /var/tmp/bootback-remote.XXXXXX)
    export REMOTE_ADDR REMOTE_SERVER_ADDR REMOTE_NETNS REMOTE_DIR
    cleanup_fn remote_host_stop
    _remote_net
    _remote_tls
    _remote_libvirtd
    _remote_pool
}

_remote_net () {
    ip netns add "$REMOTE_NETNS"
    ip link add "bbr$$h" type veth peer name "bbr$$n"
    ip link set "bbr$$n" netns "$REMOTE_NETNS"
    ip addr add "$REMOTE_SERVER_ADDR/30" dev "bbr$$h"
    ip link set "bbr$$h" up
    remote_exec ip addr add "$REMOTE_ADDR/30" dev "bbr$$n"
    remote_exec ip link set "bbr$$n" up
    remote_exec ip link set lo up
    # A stock host's TCP: no pacing congestion control.  A new namespace
    # takes this machine's default, which may be bbr (this kernel has no
    # fq qdisc, so bbr paces every packet with a timer of its own; in a
    # VM that doubled the CPU of the remote QEMU sending a backup's NBD
    # stream, and both "hosts" share this machine's cores).  cubic, the
    # kernel's default, else reno (a namespace may only pick one of
    # net.ipv4.tcp_allowed_congestion_control).
    remote_exec sysctl -q -w net.ipv4.tcp_congestion_control=cubic 2>/dev/null ||
        remote_exec sysctl -q -w net.ipv4.tcp_congestion_control=reno 2>/dev/null || true
}

_remote_tls () {
    REMOTE_TLS=$tmp/remote-tls
    bootback tls init --dir "$REMOTE_TLS" \
        --hosts localhost 127.0.0.1 "$REMOTE_SERVER_ADDR" >/dev/null ||
        fail "remote_host_start: bootback tls init failed"
    bootback tls host h2 "$REMOTE_ADDR" localhost 127.0.0.1 --dir "$REMOTE_TLS" \
        --out "$REMOTE_DIR/tls" >/dev/null ||
        fail "remote_host_start: bootback tls host failed"
    export REMOTE_TLS
}

_remote_libvirtd () {
    local d=$REMOTE_DIR/libvirtd i
    local cache=${BOOTBACK_LIBVIRT_CACHE:-$top_srcdir/tests/tmp/libvirt-cache}
    _libvirtd_dirs "$d" "$cache"
    cat >"$d/etc/libvirtd.conf" <<EOF
unix_sock_dir = "$d/run"
unix_sock_rw_perms = "0700"
auth_unix_rw = "none"
listen_tls = 1
listen_tcp = 1
listen_addr = "$REMOTE_ADDR"
auth_tcp = "none"
key_file = "$REMOTE_DIR/tls/server-key.pem"
cert_file = "$REMOTE_DIR/tls/server-cert.pem"
ca_file = "$REMOTE_DIR/tls/ca-cert.pem"
tls_allowed_dn_list = ["O=bootback,CN=bootback-server"]
log_outputs = "3:file:$d/log/libvirtd.log"
EOF
    _libvirtd_qemu_conf "$d" \
        "default_tls_x509_cert_dir = \"$REMOTE_DIR/tls\"" \
        "default_tls_x509_verify = 1"
    _libvirtd_spawn "$d" "$cache" "$REMOTE_NETNS" "$tmp" -l ||
        { remote_log; fail "the remote libvirtd did not start"; }
    REMOTE_PID=$(cat "$d/libvirtd.pid")
    REMOTE_URI="qemu+tls://$REMOTE_ADDR/system?pkipath=$REMOTE_TLS"
    REMOTE_TCP_URI="qemu+tcp://$REMOTE_ADDR/system"
    export REMOTE_URI REMOTE_TCP_URI
    for (( i = 0; i < 300; i++ )); do
        virsh -c "$REMOTE_URI" -q version >/dev/null 2>&1 && return 0
        kill -0 "$REMOTE_PID" 2>/dev/null || { remote_log; fail "the remote libvirtd exited"; }
        sleep 0.1
    done
    remote_log
    fail "the remote libvirtd does not answer on $REMOTE_URI"
}

_remote_pool () {
    mkdir -p "$REMOTE_DIR/pool"
    virsh -c "$REMOTE_URI" -q pool-define-as default dir --target "$REMOTE_DIR/pool" >/dev/null &&
        virsh -c "$REMOTE_URI" -q pool-start default >/dev/null ||
        fail "remote_host_start: no default pool on the remote"
}

remote_sshd_start () {
    local d=$REMOTE_DIR/sshd i
    [ -x /usr/sbin/sshd ] || skip "openssh-server is not installed"
    command -v ssh >/dev/null || skip "openssh-client is not installed"
    mkdir -m 0700 "$d"
    mkdir -p /run/sshd
    ssh-keygen -q -t ed25519 -N '' -C bootback-test-host -f "$d/host_key"
    ssh-keygen -q -t ed25519 -N '' -C bootback-test-client -f "$tmp/ssh-client-key"
    cp "$tmp/ssh-client-key.pub" "$d/authorized_keys"
    cat >"$d/sshd_config" <<EOF
ListenAddress $REMOTE_ADDR:22
HostKey $d/host_key
AuthorizedKeysFile $d/authorized_keys
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
PidFile $d/sshd.pid
MaxSessions 100
MaxStartups 100
LogLevel VERBOSE
EOF
    echo "$REMOTE_ADDR $(cut -d' ' -f1,2 "$d/host_key.pub")" >"$tmp/ssh-known-hosts"
    cat >"$tmp/ssh-config" <<EOF
Host *
  User root
  IdentityFile $tmp/ssh-client-key
  IdentitiesOnly yes
  UserKnownHostsFile $tmp/ssh-known-hosts
  GlobalKnownHostsFile /dev/null
  StrictHostKeyChecking yes
  PasswordAuthentication no
EOF
    BOOTBACK_SSH_CONFIG=$tmp/ssh-config
    REMOTE_SSH=root@$REMOTE_ADDR
    export BOOTBACK_SSH_CONFIG REMOTE_SSH
    ip netns exec "$REMOTE_NETNS" unshare -m --propagation private -- /bin/sh -c '
        mount -t tmpfs -o mode=0700 tmpfs "$1"
        mkdir -p /run/netns && mount -t tmpfs -o mode=0755 tmpfs /run/netns
        exec /usr/sbin/sshd -D -e -f "$2"' sh "$tmp" "$d/sshd_config" \
        2>"$d/sshd.log" &
    REMOTE_SSHD_PID=$!
    for (( i = 0; i < 100; i++ )); do
        remote_ssh true 2>/dev/null && return 0
        kill -0 "$REMOTE_SSHD_PID" 2>/dev/null || break
        sleep 0.1
    done
    cat "$d/sshd.log"
    fail "remote_sshd_start: the remote's sshd does not answer"
}

remote_ssh () {
    ssh -F "$BOOTBACK_SSH_CONFIG" -o BatchMode=yes -n -T -- "$REMOTE_SSH" "$@"
}

remote_exec () { ip netns exec "$REMOTE_NETNS" "$@"; }

remote_link () { ip link set "bbr$$h" "$1"; }

remote_log () { cat "$REMOTE_DIR/libvirtd/log/libvirtd.log" 2>/dev/null || true; }

remote_host_stop () {
    [ -n "${REMOTE_DIR:-}" ] || return 0
    if [ -n "${REMOTE_SSHD_PID:-}" ]; then
        kill "$REMOTE_SSHD_PID" 2>/dev/null
        wait "$REMOTE_SSHD_PID" 2>/dev/null
        REMOTE_SSHD_PID=
    fi
    [ -z "${REMOTE_PID:-}" ] ||
        _libvirtd_kill "$REMOTE_TCP_URI" "$REMOTE_PID" "$REMOTE_DIR/libvirtd"
    ip link del "bbr$$h" 2>/dev/null
    ip netns del "$REMOTE_NETNS" 2>/dev/null
    if [ -z "${KEEP_TMP:-}" ]; then rm -rf "$REMOTE_DIR"; else echo "kept $REMOTE_DIR"; fi
    REMOTE_DIR= REMOTE_PID=
    return 0
}
