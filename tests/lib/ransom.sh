# SPDX-License-Identifier: LGPL-2.1-or-later
#
# Change sets for the ransomware score's tests, on a raw image changed on
# the host and imported as one point per set (the score sees only the
# repository, so this is the code a backup runs).  Source after
# tests/functions.sh.  Layout of $img: "files" (compressible text) in
# 0..$files_end, a log growing from $log_off, free space (zeros) from
# $free_off up.
#
#   ransom_init IMG SIZE FILES_MIB      the image, its files, the first point
#   ransom_change KIND [SCALE]          one change: log, package, database,
#                                       copy (SCALE multiplies the sizes)
#   ransom_encrypt MIB                  encrypt MIB of the files in place
#                                       (openssl enc, AES-256-CBC)
#   ransom_import [ARGS]                import $img as the next point of
#                                       $ransom_vm; out/err in $tmp/imp.*

MiB=$((1024 * 1024))
ransom_vm=vm1
ransom_n=0

# text BYTES TAG: unique compressible text into $tmp/t
ransom_text () {
    seq -f "$2 %.0f: INFO request served in 12 ms, user=alice status=200 path=/index.html" \
        1 $(($1 / 60 + 1)) >"$tmp/t"
    truncate -s "$1" "$tmp/t"
}
ransom_put () { dd of="$img" bs=4096 seek=$(($2 / 4096)) conv=notrunc status=none <"$1"; }

ransom_import () {
    ransom_n=$((ransom_n + 1))
    bootback import "$img" --format raw --vm "$ransom_vm" \
        --time "$(printf '20261201T%02d%02d00Z' $((ransom_n / 60)) $((ransom_n % 60)))" \
        "$@" >"$tmp/imp.out" 2>"$tmp/imp.err" || { cat "$tmp/imp.err"; fail "import $ransom_n"; }
}

ransom_init () {
    img=$1
    files_end=$(($3 * MiB))
    log_off=$files_end
    free_off=$((files_end + 16 * MiB))
    rm -f "$img"
    ransom_reused=0
    truncate -s "$2" "$img"
    disk_end=$(stat -c %s "$img")
    ransom_text "$files_end" "files-$ransom_vm"
    ransom_put "$tmp/t" 0
    ransom_import
}

# ransom_free SIZE: where to write SIZE bytes of new files: the free space
# from $free_off, from its start again when full (old files' space reused)
# ($ransom_reused is then 1)
ransom_reused=0
ransom_free () {
    if [ $((free_off + $1)) -gt "$disk_end" ]; then
        free_off=$((files_end + 16 * MiB))
        ransom_reused=1
    fi
}

ransom_change () {
    local kind=$1 k=${2:-1} size
    case $kind in
    log) size=$(( (RANDOM % 512 + 64) * 1024 ))
         ransom_text $size "log$ransom_n"; ransom_put "$tmp/t" $log_off
         log_off=$((log_off + size / 4096 * 4096)) ;;
    package) size=$(( (RANDOM % 12 + 4) * k * MiB ))
         ransom_text $size "pkg$ransom_n"; ransom_free $size; ransom_put "$tmp/t" $free_off
         free_off=$((free_off + size)) ;;
    database) size=$(( (RANDOM % 6 + 1) * k * MiB ))
         ransom_text $size "db$ransom_n"
         ransom_put "$tmp/t" $(( RANDOM % (files_end / MiB - size / MiB) * MiB )) ;;
    copy) size=$(( (RANDOM % 6 + 2) * k * MiB ))
         head -c $((size * 2)) /dev/urandom | base64 | gzip -1 >"$tmp/t"
         truncate -s $size "$tmp/t"
         ransom_free $size; ransom_put "$tmp/t" $free_off
         free_off=$((free_off + size)) ;;
    esac
}

ransom_encrypt () {
    local off=$(( RANDOM % (files_end / MiB - $1) ))
    dd if="$img" bs=1M skip=$off count="$1" status=none |
        openssl enc -aes-256-cbc -pbkdf2 -pass pass:ransom -nosalt >"$tmp/enc"
    truncate -s $(($1 * MiB)) "$tmp/enc"
    ransom_put "$tmp/enc" $((off * MiB))
}
