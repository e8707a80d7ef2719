#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# bootback tls init: the CA and certificates it makes work for NBD over
# TLS on 127.0.0.1 as nbdkit (--tls=require), libnbd (nbdinfo) and QEMU
# (qemu-img with a tls-creds-x509 object) use them:
#   - the layout (ca-cert.pem, server-*.pem, client-*.pem, libvirt's
#     names as links), keys 0600 in a 0700 directory, ECDSA P-256;
#   - nbdinfo and qemu-img read the served disk byte for byte over TLS;
#   - dh-params.pem is ffdhe2048, and qemu-nbd serves TLS with the directory;
#   - plaintext is refused, a client of another CA is refused, a client
#     with no certificate is refused when nbdkit verifies peers;
#   - the client certificate is the backup server's, CN=bootback-server
#     (libvirt's DN O=bootback,CN=bootback-server); an older CN=bootback
#     one is kept, with a note;
#   - tls host: a hypervisor host's directory with the CA's certificate
#     (not its key), a server certificate and its QEMU's client
#     certificate CN=bootback-qemu-NAME, which reads the served disk too;
#     run again it keeps them; refused: a --out with a CA key or another
#     client certificate (the backup server's), a --dir without the CA key;
#   - a second run keeps everything; a certificate of another CA in the
#     directory is an error naming it; a directory others can enter is
#     refused.
source "$top_srcdir/tests/functions.sh"
requires nbdkit nbdinfo qemu-img qemu-nbd openssl python3 cmp

tls=$tmp/tls
bootback tls init --dir "$tls" --hosts localhost 127.0.0.1 | tee "$tmp/init.out"
grep -q "^made $tls/ca-cert.pem and ca-key.pem" "$tmp/init.out" || fail "no CA made"
grep -q "^server names: DNS:localhost,IP:127.0.0.1$" "$tmp/init.out" || fail "server names"
[ "$(stat -c %a "$tls")" = 700 ] || fail "$tls is not 0700"
for f in ca-key server-key client-key; do
    [ "$(stat -c %a "$tls/$f.pem")" = 600 ] || fail "$f.pem is not 0600"
done
for f in ca-cert server-cert client-cert cacert servercert serverkey clientcert clientkey; do
    [ -s "$tls/$f.pem" ] || fail "no $f.pem"
done
openssl verify -CAfile "$tls/ca-cert.pem" "$tls/server-cert.pem" "$tls/client-cert.pem"
# ECDSA P-256 keys (cheap handshakes; RSA 3072 cost ~10x the CPU), with
# the critical keyUsage libvirt and QEMU check on any key type
for f in ca server client; do
    grep -q "NIST CURVE: P-256" <<< "$(openssl x509 -in "$tls/$f-cert.pem" -noout -text)" ||
        fail "$f-cert.pem: not an ECDSA P-256 key"
done
grep -A1 "Key Usage: critical" <<< "$(openssl x509 -in "$tls/client-cert.pem" -noout -text)" |
    grep -q "Digital Signature, Key Encipherment" || fail "client-cert.pem: keyUsage"
# QEMU's TLS servers read dh-params.pem (else they generate parameters
# each time, seconds): the RFC 7919 group, in PKCS#3 as GnuTLS imports it
grep -q "^-----BEGIN DH PARAMETERS-----$" "$tls/dh-params.pem" || fail "dh-params.pem is not PKCS#3"
grep -q "GROUP: ffdhe2048" <<< "$(openssl pkeyparam -in "$tls/dh-params.pem" -text -noout)" ||
    fail "dh-params.pem is not ffdhe2048"

# the backup server's identity, as libvirtd's tls_allowed_dn_list reads it
grep -qx "subject=CN=bootback-server,O=bootback" \
    <<< "$(openssl x509 -in "$tls/client-cert.pem" -noout -subject -nameopt RFC2253)" ||
    fail "client certificate: not CN=bootback-server,O=bootback"
if command -v virt-pki-query-dn >/dev/null; then
    [ "$(virt-pki-query-dn "$tls/client-cert.pem")" = "O=bootback,CN=bootback-server" ] ||
        fail "libvirt's DN: $(virt-pki-query-dn "$tls/client-cert.pem")"
fi

# a hypervisor host's directory
bootback tls host h1 127.0.0.1 --dir "$tls" --out "$tmp/h1" | tee "$tmp/host.out"
grep -q "^made $tmp/h1/client-cert.pem" "$tmp/host.out" || fail "tls host: no client certificate"
[ ! -e "$tmp/h1/ca-key.pem" ] || fail "tls host: the CA's key is in the host's directory"
cmp "$tls/ca-cert.pem" "$tmp/h1/ca-cert.pem" || fail "tls host: another ca-cert.pem"
for f in server-key client-key; do
    [ "$(stat -c %a "$tmp/h1/$f.pem")" = 600 ] || fail "tls host: $f.pem is not 0600"
    cmp -s "$tmp/h1/$f.pem" "$tls/client-key.pem" && fail "tls host: the backup server's key"
done
for f in dh-params cacert servercert serverkey clientcert clientkey; do
    [ -s "$tmp/h1/$f.pem" ] || fail "tls host: no $f.pem"
done
openssl x509 -in "$tmp/h1/client-cert.pem" -noout -subject -nameopt RFC2253 -ext extendedKeyUsage \
    > "$tmp/h1.subj"
grep -qx "subject=CN=bootback-qemu-h1,O=bootback" "$tmp/h1.subj" || fail "tls host: $(cat "$tmp/h1.subj")"
grep -q "TLS Web Client Authentication" "$tmp/h1.subj" || fail "tls host: not clientAuth"
openssl verify -CAfile "$tls/ca-cert.pem" "$tmp/h1/server-cert.pem" "$tmp/h1/client-cert.pem"
bootback tls host h1 127.0.0.1 --dir "$tls" --out "$tmp/h1" > "$tmp/host2.out"
! grep -q "^made" "$tmp/host2.out" || fail "tls host again made something"
expect_rc 1 bootback tls host h2 --dir "$tls" --out "$tls"
grep -q "$tls holds a CA key" "$tmp/err" || fail "tls host --out the CA's directory: wrong error"
mkdir -m 700 "$tmp/h2"
cp "$tls"/client-*.pem "$tmp/h2/"
expect_rc 1 bootback tls host h2 --dir "$tls" --out "$tmp/h2"
grep -q "client-cert.pem is CN=bootback-server, not bootback-qemu-h2" "$tmp/err" ||
    fail "tls host over the backup server's identity: wrong error"
expect_rc 1 bootback tls host h3 --dir "$tmp/h1" --out "$tmp/h3"
grep -q "$tmp/h1/ca-key.pem: No such file" "$tmp/err" || fail "tls host without the CA key: wrong error"
expect_rc 1 bootback tls host --dir "$tls" --out "$tmp/h3"
expect_rc 1 bootback tls host h3 --dir "$tls"

# an older directory's client certificate, CN=bootback: kept, with a note
mkdir -m 700 "$tmp/old"
cp "$tls"/ca-*.pem "$tls"/server-*.pem "$tmp/old/"
openssl req -new -newkey rsa:2048 -nodes -keyout "$tmp/old/client-key.pem" \
    -subj "/O=bootback/CN=bootback" 2>/dev/null |
    openssl x509 -req -CA "$tls/ca-cert.pem" -CAkey "$tls/ca-key.pem" -set_serial 7 -days 30 \
        -out "$tmp/old/client-cert.pem" 2>/dev/null
bootback tls init --dir "$tmp/old" > "$tmp/old.out"
grep -q "^kept $tmp/old/client-cert.pem" "$tmp/old.out" || fail "old client: $(cat "$tmp/old.out")"
grep -q "^note: $tmp/old/client-cert.pem is CN=bootback" "$tmp/old.out" || fail "old client: no note"

# another CA, and a directory with only the CA (no client certificate)
bootback tls init --dir "$tmp/other" --hosts localhost 127.0.0.1 >/dev/null
mkdir -m 700 "$tmp/nocert"
cp "$tls/ca-cert.pem" "$tmp/nocert/"

make_disk "$tmp/disk.raw" $((4 << 20))
port=$(python3 -c 'import socket
s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
cat > "$tmp/client.sh" <<EOF
#!/usr/bin/env bash
set -u
uri="nbds://127.0.0.1:$port/"
nbdinfo --size "\$uri?tls-certificates=$tls" > "$tmp/size" 2> "$tmp/nbdinfo.err" || exit 10
qemu-img convert -f raw -O raw \\
    --object tls-creds-x509,id=tls0,dir=$tls,endpoint=client \\
    "json:{\"driver\": \"raw\", \"file\": {\"driver\": \"nbd\", \"tls-creds\": \"tls0\",
      \"server\": {\"type\": \"inet\", \"host\": \"127.0.0.1\", \"port\": \"$port\"}}}" \\
    "$tmp/copy.raw" 2> "$tmp/qemu.err" || exit 11
nbdinfo --size "nbd://127.0.0.1:$port/" > /dev/null 2> "$tmp/plain.err" && exit 12
nbdinfo --size "\$uri?tls-certificates=$tmp/other" > /dev/null 2> "$tmp/otherca.err" && exit 13
nbdinfo --size "\$uri?tls-certificates=$tmp/nocert" > /dev/null 2> "$tmp/nocert.err" && exit 14
# a host's QEMU reading a session's front with its own certificate
qemu-img convert -f raw -O raw \\
    --object tls-creds-x509,id=tls0,dir=$tmp/h1,endpoint=client \\
    "json:{\"driver\": \"raw\", \"file\": {\"driver\": \"nbd\", \"tls-creds\": \"tls0\",
      \"server\": {\"type\": \"inet\", \"host\": \"127.0.0.1\", \"port\": \"$port\"}}}" \\
    "$tmp/copy-h1.raw" 2> "$tmp/qemu-h1.err" || exit 15
exit 0
EOF
chmod +x "$tmp/client.sh"
rc=0
nbdkit -r -i 127.0.0.1 -p "$port" --tls=require --tls-certificates="$tls" --tls-verify-peer \
    file "$tmp/disk.raw" --run "$tmp/client.sh" || rc=$?
case $rc in
    0) ;;
    10) fail "nbdinfo over TLS: $(cat "$tmp/nbdinfo.err")" ;;
    11) fail "qemu-img over TLS: $(cat "$tmp/qemu.err")" ;;
    12) fail "plaintext was accepted by nbdkit --tls=require" ;;
    13) fail "a client of another CA was accepted" ;;
    14) fail "a client without a certificate was accepted (--tls-verify-peer)" ;;
    15) fail "qemu-img over TLS with the host's certificate: $(cat "$tmp/qemu-h1.err")" ;;
    *) fail "nbdkit exited $rc" ;;
esac
[ "$(cat "$tmp/size")" = $((4 << 20)) ] || fail "nbdinfo size $(cat "$tmp/size")"
cmp "$tmp/disk.raw" "$tmp/copy.raw" || fail "qemu-img over TLS read other bytes"
cmp "$tmp/disk.raw" "$tmp/copy-h1.raw" || fail "qemu-img with the host's certificate read other bytes"
echo "refusals: plain: $(tail -n 1 "$tmp/plain.err"); other CA: $(tail -n 1 "$tmp/otherca.err")"

# QEMU as the TLS server (as a backup job's NBD server is) loads the
# directory, dh-params.pem included (a file GnuTLS cannot import fails it)
qemu-nbd -r -f raw --fork --pid-file "$tmp/qemu-nbd.pid" -b 127.0.0.1 -p "$port" \
    --object "tls-creds-x509,id=tls0,dir=$tls,endpoint=server,verify-peer=on" \
    --tls-creds tls0 "$tmp/disk.raw" 2> "$tmp/qemu-nbd.err" ||
    fail "qemu-nbd with the TLS directory: $(cat "$tmp/qemu-nbd.err")"
cleanup_fn "kill $(cat "$tmp/qemu-nbd.pid") 2>/dev/null || true"
[ "$(nbdinfo --size "nbds://127.0.0.1:$port/?tls-certificates=$tls")" = $((4 << 20)) ] ||
    fail "nbdinfo over TLS from qemu-nbd"
kill "$(cat "$tmp/qemu-nbd.pid")"

# a second run keeps everything
bootback tls init --dir "$tls" > "$tmp/again.out"
grep -q "^kept $tls/server-cert.pem" "$tmp/again.out" || fail "second run: $(cat "$tmp/again.out")"
! grep -q "^made" "$tmp/again.out" || fail "second run made something"
# a server certificate of another CA: named
cp "$tmp/other/server-cert.pem" "$tls/server-cert.pem"
expect_rc 1 bootback tls init --dir "$tls"
grep -q "$tls/server-cert.pem is not signed by the CA" "$tmp/err" || fail "foreign certificate: wrong error"
# a directory others can enter
mkdir -m 755 "$tmp/open"
expect_rc 1 bootback tls init --dir "$tmp/open"
grep -q "$tmp/open is mode 0755" "$tmp/err" || fail "open directory: wrong error"
[ -z "$(ls -A "$tmp/open")" ] || fail "keys written into an open directory"
# a directory someone else owns (0700, so they alone can enter it: they
# could read or swap what root writes there), one whose parent another
# user can write (not sticky: they could rename it away and put theirs),
# and a host's --out and a CA --dir there: refused, naming the directory
# and its owner, nothing written
mkdir -m 700 "$tmp/theirs"
chown nobody "$tmp/theirs"
expect_rc 1 bootback tls init --dir "$tmp/theirs"
grep -q "directory $tmp/theirs (owner nobody, mode 0700)" "$tmp/err" ||
    fail "a directory of another user: $(cat "$tmp/err")"
[ -z "$(ls -A "$tmp/theirs")" ] || fail "keys written into another user's directory"
mkdir -m 777 "$tmp/shared"
expect_rc 1 bootback tls init --dir "$tmp/shared/tls"
grep -q "directory $tmp/shared (owner root, mode 0777)" "$tmp/err" ||
    fail "a directory under one others can write: $(cat "$tmp/err")"
[ -z "$(ls -A "$tmp/shared/tls")" ] || fail "keys written under a directory others can write"
expect_rc 1 bootback tls host h3 127.0.0.1 --dir "$tls" --out "$tmp/shared/h3"
grep -q "directory $tmp/shared (owner root, mode 0777)" "$tmp/err" ||
    fail "tls host --out under a directory others can write: $(cat "$tmp/err")"
[ -z "$(ls -A "$tmp/shared/h3")" ] || fail "tls host wrote under a directory others can write"
mv "$tls" "$tmp/shared/ca"
expect_rc 1 bootback tls host h4 127.0.0.1 --dir "$tmp/shared/ca" --out "$tmp/h4"
grep -q "directory $tmp/shared (owner root, mode 0777)" "$tmp/err" ||
    fail "tls host --dir under a directory others can write: $(cat "$tmp/err")"
[ ! -e "$tmp/h4" ] || fail "tls host used a CA others could have swapped"
echo "tls ok"
