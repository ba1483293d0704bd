#!/usr/bin/env bash
# Builds and runs every test: the doctest suite, then the command-line tests (meson suite "cli").
# Ends with one line "tests: N passed, N failed" (doctest cases + cli tests).
set -uo pipefail
cd "$(dirname "$0")/.."
scripts/build.sh || exit 1
log=$(mktemp)
./build/tests/ironclad_tests "$@" 2>&1 | tee "$log"
rc=${PIPESTATUS[0]}
summary=$(grep -E '^\[doctest\] test cases:' "$log" | tail -n 1)
passed=$(sed -E 's/.*\| *([0-9]+) passed.*/\1/' <<<"$summary")
failed=$(sed -E 's/.*\| *([0-9]+) failed.*/\1/' <<<"$summary")
passed=${passed:-0} failed=${failed:-0}
if meson test -C build --suite cli --print-errorlogs; then
  passed=$((passed + 1))
else
  failed=$((failed + 1)) rc=1
fi
rm -f "$log"
echo "tests: $passed passed, $failed failed"
exit "$rc"
