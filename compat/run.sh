#!/usr/bin/env bash
# compat/run.sh: runs the compat suite (compat/suite) on both sides.
#
#   redsync side:    the suite as written, against redsync v4.18.1
#                    (go test in compat/).
#   quorumlock side: the suite copied to a temporary directory, its import
#                    prefix rewritten with the README's one-liner, a replace
#                    directive pointing github.com/quorumlock/redsync (every
#                    adapter included) at this repository, built with
#                    -tags quorumlock.
#
# Usage: bash compat/run.sh [redsync|quorumlock|both] [go test flags...]
#   e.g. bash compat/run.sh quorumlock -run 'TestTryLock'
# COMPAT_RACE=0 leaves out -race. Exit status: 0 when every test passed on
# every side run; each side's counts are printed either way.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
sides=both
case "${1:-}" in
redsync | quorumlock | both)
	sides=$1
	shift
	;;
esac
flags=(-count=1 -v -timeout=8m)
if [ "${COMPAT_RACE:-1}" != 0 ]; then
	flags+=(-race)
fi
export GOWORK=off
if [ -x "$(go env GOPATH)/bin/staticcheck" ]; then
	PATH="$(go env GOPATH)/bin:$PATH"
fi

tmp=$(mktemp -d)
trap 'chmod -R u+w "$tmp" 2>/dev/null; rm -rf "$tmp"' EXIT

summary=()
status=0

testargs=("$@")

# run SIDE DIR TAGS: vets the module in DIR (go vet, and staticcheck when
# it is on PATH), runs its suite with the build tags TAGS, and counts the
# top-level tests that passed and failed.
run() {
	local side=$1 dir=$2 tags=$3
	local log="$tmp/$side.log" rc=0
	echo "== compat suite, $side side"
	# set -e does not apply inside a subshell whose status is tested: chain.
	(
		cd "$dir" &&
			go vet -tags="$tags" ./... &&
			{ ! command -v staticcheck >/dev/null 2>&1 || staticcheck -tags="$tags" ./...; } &&
			go test -tags="$tags" "${flags[@]}" "${testargs[@]}" ./suite/
	) >"$log" 2>&1 || rc=$?
	# The failures and their output, then the counts.
	grep -v -e '^=== \(RUN\|PAUSE\|CONT\)' -e '^ *--- PASS' "$log" | grep -v '^\s*$' | tail -n 400 || true
	local passed failed
	passed=$(grep -c '^--- PASS' "$log" || true)
	failed=$(grep -c '^--- FAIL' "$log" || true)
	summary+=("$side side: $passed passed, $failed failed")
	if [ "$rc" -ne 0 ]; then
		status=1
		if [ "$failed" -ne 0 ]; then
			summary+=("  failed on the $side side: $(grep '^--- FAIL' "$log" | awk '{print $3}' | tr '\n' ' ')")
		else
			summary+=("  $side side: go vet or go test exited with $rc before any test failed")
		fi
	fi
}

if [ "$sides" != quorumlock ]; then
	run redsync "$root/compat" ""
fi

if [ "$sides" != redsync ]; then
	copy="$tmp/compat"
	cp -r "$root/compat" "$copy"
	# The README's one-liner, on the suite only: compat/peer keeps redsync
	# v4 for the mixed-fleet tests.
	(cd "$copy/suite" && sed -i 's#github.com/go-redsync/redsync/v4#github.com/quorumlock/redsync#g' $(grep -rl go-redsync --include=*.go .))
	(cd "$copy" && go mod edit -replace "github.com/quorumlock/redsync=$root" &&
		GOFLAGS=-mod=mod go mod tidy)
	run quorumlock "$copy" quorumlock
fi

echo
printf '%s\n' "${summary[@]}"
exit "$status"
