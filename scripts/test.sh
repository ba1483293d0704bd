#!/usr/bin/env bash
# Builds and runs the whole doctest suite, then prints one closing line "tests: N passed, N failed".
set -uo pipefail
cd "$(dirname "$0")/.."
scripts/build.sh || exit 1
log=$(mktemp)
./build/tests/ironclad_tests "$@" 2>&1 | tee "$log"
rc=${PIPESTATUS[0]}
summary=$(grep -E '^\[doctest\] test cases:' "$log" | tail -n 1)
passed=$(sed -E 's/.*\| *([0-9]+) passed.*/\1/' <<<"$summary")
failed=$(sed -E 's/.*\| *([0-9]+) failed.*/\1/' <<<"$summary")
rm -f "$log"
echo "tests: ${passed:-0} passed, ${failed:-0} failed"
exit "$rc"
