#!/bin/sh
# tests/fuzz/run_smoke.sh FUZZ_BIN SEED_DIR DICT SECONDS
# Runs a libFuzzer binary for SECONDS with the seeds in SEED_DIR (read only: new inputs go to
# a temporary corpus directory, removed afterwards) and exits with the fuzzer's status.
# Crash/leak/timeout reproducers are written to the current directory (libFuzzer's default).
set -u

if [ "$#" -ne 4 ]; then
    echo "usage: $0 FUZZ_BIN SEED_DIR DICT SECONDS" >&2
    exit 2
fi
bin=$1
seeds=$2
dict=$3
secs=$4

[ -x "$bin" ] || { echo "$0: $bin: not an executable" >&2; exit 2; }
[ -d "$seeds" ] || { echo "$0: $seeds: not a directory" >&2; exit 2; }
[ -r "$dict" ] || { echo "$0: $dict: not readable" >&2; exit 2; }
case $secs in
    ''|*[!0-9]*) echo "$0: SECONDS must be a whole number" >&2; exit 2 ;;
esac

tmp=$(mktemp -d "${TMPDIR:-/tmp}/fuzz.XXXXXX") || exit 2
trap 'rm -rf "$tmp"' EXIT
trap 'exit 130' INT TERM

# UB is fatal even if the binary was built with recoverable UBSan.
UBSAN_OPTIONS=${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1}
export UBSAN_OPTIONS

"$bin" -max_total_time="$secs" -timeout=5 -rss_limit_mb=2048 -dict="$dict" "$tmp" "$seeds"
status=$?
exit "$status"
