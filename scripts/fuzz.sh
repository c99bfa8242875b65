#!/bin/sh
# Build the libFuzzer harnesses of tests/fuzz/ and run each of them.
#
#   scripts/fuzz.sh [SECONDS] [HARNESS...]
#
# Builds the core with clang -fsanitize=fuzzer-no-link,address,undefined
# into build/fuzz/ and links every tests/fuzz/fuzz_*.c into
# build/fuzz/<harness>. For each harness (all by default) it first replays
# the regression inputs of tests/fuzz/regress/<harness>/ (every crash ever
# found), then fuzzes for SECONDS (default 60; 0 = replay only) starting
# from the seed corpus tests/fuzz/corpus/<harness>/. The working corpus
# grows in build/fuzz/corpus/<harness>/ (the seeds in the tree stay as they
# are); a crash is written to build/fuzz/artifacts/<harness>/ and the script
# fails. Environment: FUZZ_BUILD_ONLY=1 builds and stops; FUZZ_ARGS adds
# libFuzzer options; CLANG picks the compiler (default clang).
set -eu

cd "$(dirname "$0")/.."
SECS=${1:-60}
[ $# -gt 0 ] && shift
CLANG=${CLANG:-clang}
B=build/fuzz
SAN="-fsanitize=address,undefined -fno-sanitize-recover=undefined"
CF="-O1 -g -fno-omit-frame-pointer $SAN -fsanitize=fuzzer-no-link"

if ! command -v "$CLANG" >/dev/null; then
	echo "fuzz.sh: $CLANG not found" >&2
	exit 1
fi

# The core library, through the Makefile's own rules.
make --no-print-directory BUILD=$B CC="$CLANG" CFLAGS="$CF" $B/libutcore.a >/dev/null

LIBS="-lisal -lcrypto -ljansson -luring -lrbd -lrados -lpthread"
for src in tests/fuzz/fuzz_*.c; do
	h=$(basename "$src" .c)
	if [ ! -x $B/$h ] || [ "$src" -nt $B/$h ] || [ $B/libutcore.a -nt $B/$h ] ||
	   [ tests/fuzz/fuzz_util.h -nt $B/$h ]; then
		echo "  FUZZ  $h"
		"$CLANG" -std=c11 -D_GNU_SOURCE -Isrc -Iinclude -O1 -g \
			-fno-omit-frame-pointer $SAN -fsanitize=fuzzer \
			-Wall -Wextra -Werror -Wno-unused-parameter \
			-o $B/$h "$src" $B/libutcore.a $LIBS
	fi
done
[ "${FUZZ_BUILD_ONLY:-0}" = 1 ] && exit 0

if [ $# -eq 0 ]; then
	set -- $(for s in tests/fuzz/fuzz_*.c; do basename "$s" .c; done)
fi

# Leaks are real findings for everything but the harness's own process-wide
# state, which each harness frees before it returns.
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
status=0
for h in "$@"; do
	h=${h#fuzz_}
	h=fuzz_$h
	name=${h#fuzz_}
	bin=$B/$h
	[ -x "$bin" ] || { echo "fuzz.sh: no harness $h" >&2; exit 2; }
	reg=tests/fuzz/regress/$name
	if [ -d "$reg" ] && [ -n "$(ls -A "$reg" 2>/dev/null)" ]; then
		echo "== $h: replaying $(ls "$reg" | wc -l) regression inputs"
		if ! "$bin" -runs=1 $reg/* >$B/$h.regress.log 2>&1; then
			echo "!! $h: a regression input fails; see $B/$h.regress.log"
			tail -30 $B/$h.regress.log
			status=1
			continue
		fi
	fi
	[ "$SECS" -gt 0 ] || continue
	mkdir -p $B/corpus/$name $B/artifacts/$name
	seeds=tests/fuzz/corpus/$name
	[ -d $seeds ] || seeds=
	echo "== $h: fuzzing for $SECS s"
	if ! "$bin" -max_total_time="$SECS" -timeout=10 -rss_limit_mb=2048 \
		-max_len=${FUZZ_MAX_LEN:-65536} \
		-artifact_prefix=$B/artifacts/$name/ -print_final_stats=1 \
		${FUZZ_ARGS:-} $B/corpus/$name $seeds >$B/$h.log 2>&1; then
		echo "!! $h: crash; input in $B/artifacts/$name/, log $B/$h.log"
		grep -m1 -A20 'ERROR\|runtime error\|Assertion\|deadly signal\|timeout' $B/$h.log || tail -30 $B/$h.log
		status=1
		continue
	fi
	grep -E '^stat::(number_of_executed_units|average_exec_per_sec|new_units_added)' $B/$h.log | tr '\n' ' '
	echo
	echo "   corpus: $(ls $B/corpus/$name | wc -l) inputs"
done
exit $status
