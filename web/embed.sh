#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# web/embed.sh OUT.c DIR: the files under DIR (web/static) as the C table
# web_static_files (web/web.h), so that bootback web serves them from the
# program, never from disk.  index.html is served at /, login.html at
# /login, every other file at /static/PATH.
set -euo pipefail
out=$1 dir=$2
tmp=$out.tmp
{
    echo "/* Made by web/embed.sh from $dir: do not edit. */"
    echo '#include "web/web.h"'
    n=0
    while IFS= read -r f; do
        echo "static const unsigned char f$n[] = {"
        od -An -v -tx1 "$dir/$f" | sed 's/ \([0-9a-f][0-9a-f]\)/0x\1,/g'
        echo "0 };"
        n=$((n + 1))
    done < <(cd "$dir" && find . -type f ! -name '*~' | sed 's|^\./||' | LC_ALL=C sort)
    echo "const struct web_file web_static_files[] = {"
    n=0
    while IFS= read -r f; do
        case $f in
            index.html) path=/ ;;
            login.html) path=/login ;;
            *) path=/static/$f ;;
        esac
        case $f in
            *.html) type="text/html; charset=utf-8" ;;
            *.js) type="text/javascript; charset=utf-8" ;;
            *.css) type="text/css; charset=utf-8" ;;
            *.png) type="image/png" ;;
            *.svg) type="image/svg+xml" ;;
            *) type="text/plain; charset=utf-8" ;;
        esac
        echo "  { \"$path\", \"$type\", f$n, sizeof f$n - 1 },"
        n=$((n + 1))
    done < <(cd "$dir" && find . -type f ! -name '*~' | sed 's|^\./||' | LC_ALL=C sort)
    echo "  { NULL, NULL, NULL, 0 }"
    echo "};"
} > "$tmp"
mv "$tmp" "$out"
