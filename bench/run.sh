#!/usr/bin/env bash
# utarget benchmark (issue 8): utargetd vs tgt vs istgt on loopback.
# Usage: bench/run.sh [--quick] [--rounds N] [--duration S] [--profile] [--out DIR] ...
#        (bench/run.sh --help for all options; `make bench` runs it after `make all`)
set -eu
here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
"$root/scripts/deps.sh" bench
[ -x "$root/build/utargetd" ] || make -C "$root" all
# bench/ddperf (the data-digest client) is not part of `all`
make --no-print-directory -C "$root" build/bench/ddperf
exec python3 "$here/bench.py" "$@"
