#!/bin/sh
# Runs each unit-test binary given as an argument, adds up their
# "N passed, N failed" lines and ends with the total on a line of its own.
passed=0; failed=0; broken=0
for t in "$@"; do
    out=$("$t" 2>&1); rc=$?
    line=$(printf '%s\n' "$out" | grep -E '^[0-9]+ passed, [0-9]+ failed$' | tail -n 1)
    if [ -z "$line" ] || [ $rc -ne 0 ]; then
        printf '%s\n' "$out" | grep -v '^ok  ' >&2
    fi
    if [ -z "$line" ]; then
        echo "unit: $t ended (exit $rc) without a summary line" >&2
        broken=$((broken + 1)); continue
    fi
    echo "unit: $(basename "$t"): $line"
    p=${line%% passed*}; f=${line#*passed, }; f=${f%% failed*}
    # A sanitizer report exits non-zero after the summary: that is a failure.
    if [ $rc -ne 0 ] && [ "$f" -eq 0 ]; then
        echo "unit: $t exited $rc after its summary" >&2; f=1
    fi
    passed=$((passed + p)); failed=$((failed + f))
done
failed=$((failed + broken))
echo "unit: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
