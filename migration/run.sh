#!/usr/bin/env bash
# migration/run.sh: migrate real users of redsync v4 to this library and run
# their tests on both sides.
#
# For each project below, the script fetches its module at a pinned version
# through the Go module proxy (go mod download), copies it to a temporary
# directory twice and
#   - leaves one copy as fetched, on the redsync v4 version it pins;
#   - migrates the other with the README's one-liner (the import prefix
#     rewritten, go mod edit -replace to this checkout, go mod tidy).
# It builds the tests of the packages that use redsync on both copies and
# runs each test binary N times, each run against a redis-server of its own
# that the script starts on a free loopback port and stops afterwards. It
# never uses a server it did not start. It prints, per test, the passes per
# run on each side. Nothing fetched is written into the repository.
#
# Usage: bash migration/run.sh [-n RUNS] [-p PROJECT[,PROJECT...]] [-r VERSION] [-k] [-race]
#   -n RUNS     runs of each test binary per side (default 5)
#   -p LIST     projects to run, comma-separated (default: all):
#               gocron-v1 gocron-v2 machinery gitea
#   -r VERSION  run the fetched side on this redsync v4 version instead of
#               the one the project pins (go get ...@VERSION), e.g. v4.18.1
#   -k          keep the temporary directory (its path is printed)
#   -race       build the tests with the race detector
#
# The exit status is 0 when every test passed on the migrated side in at
# least as many runs as on the fetched side (the timing-dependent tests
# named in $timing_dependent excepted), 1 otherwise, 2 when a project could
# not be fetched or built. See migration/README.md for what each project's
# tests need and why the timing-dependent ones are.
set -euo pipefail

runs=5
only=""
redsync_version=""
keep=0
race=""
while [ $# -gt 0 ]; do
	case $1 in
	-n) runs=$2; shift 2 ;;
	-p) only=$2; shift 2 ;;
	-r) redsync_version=$2; shift 2 ;;
	-k) keep=1; shift ;;
	-race) race="-race"; shift ;;
	-h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
	*) echo "run.sh: unknown argument $1 (see -h)" >&2; exit 2 ;;
	esac
done
case $runs in
'' | *[!0-9]* | 0) echo "run.sh: -n wants a positive number of runs, got '$runs'" >&2; exit 2 ;;
esac

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
if [ -d /usr/local/go/bin ]; then
	PATH="/usr/local/go/bin:$PATH"
fi
redis_server=${REDSYNC_REDIS_SERVER:-$(command -v redis-server || true)}
[ -n "$redis_server" ] || { echo "run.sh: redis-server not found (install it, or set REDSYNC_REDIS_SERVER)" >&2; exit 2; }
command -v go >/dev/null || { echo "run.sh: go not found" >&2; exit 2; }

# The copies are modules of their own: no workspace of the caller, no other
# toolchain than the one installed.
export GOWORK=off GOTOOLCHAIN=local

# The projects: module@version, the packages whose tests run (their tests
# use redsync, directly or through the project's code), and a -test.run
# pattern per package (empty: all tests).
projects=(gocron-v1 gocron-v2 machinery gitea)
declare -A module packages testrun
module[gocron-v1]=github.com/go-co-op/gocron-redis-lock@v1.3.0
packages[gocron-v1]="."
module[gocron-v2]=github.com/go-co-op/gocron-redis-lock/v2@v2.0.1
packages[gocron-v2]="."
module[machinery]=github.com/RichardKnop/machinery/v2@v2.0.16
packages[machinery]="./backends/redis ./brokers/redis ./integration-tests"
testrun[machinery:./integration-tests]='^TestRedis'
module[gitea]=code.gitea.io/gitea@v1.24.6
packages[gitea]="./modules/globallock"

# Tests whose outcome is a race on both sides (migration/README.md says
# why): shown in the table, left out of the exit status.
timing_dependent="gocron-v2:TestEnableDistributedLocking gocron-v2:(.)"

if [ -n "$only" ]; then
	IFS=, read -r -a chosen <<<"$only"
	for p in "${chosen[@]}"; do
		[ -n "${module[$p]:-}" ] || { echo "run.sh: unknown project $p (known: ${projects[*]})" >&2; exit 2; }
	done
	projects=("${chosen[@]}")
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/redsync-migration.XXXXXX")
redis_pids=()
cleanup() {
	local pid
	for pid in "${redis_pids[@]}"; do
		kill "$pid" 2>/dev/null || true
		wait "$pid" 2>/dev/null || true
	done
	if [ "$keep" = 1 ]; then
		echo "kept $work"
	else
		# The module cache's copies are read-only; so are files go wrote.
		chmod -R u+w "$work" 2>/dev/null || true
		rm -rf "$work"
	fi
}
trap cleanup EXIT
results=$work/results.tsv
: >"$results"
started=$SECONDS

# log MESSAGE: a progress line on stderr with the elapsed seconds.
log() {
	printf '[%4ds] %s\n' "$((SECONDS - started))" "$*" >&2
}

# port_in_use PORT: whether anything accepts connections on 127.0.0.1:PORT.
port_in_use() {
	(exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# start_redis: start a redis-server on a free loopback port; sets
# redis_port and redis_pid. The server keeps nothing on disk. A port that
# another process takes between the check and the bind makes that
# redis-server exit: then another port is tried.
start_redis() {
	local attempt port pid dir i
	for attempt in 1 2 3 4 5 6 7 8 9 10; do
		port=$((20000 + RANDOM % 40000))
		port_in_use "$port" && continue
		dir=$work/redis/$port
		mkdir -p "$dir"
		"$redis_server" --port "$port" --bind 127.0.0.1 --save '' --appendonly no \
			--dir "$dir" --logfile "$dir/log" >/dev/null 2>&1 &
		pid=$!
		for i in $(seq 50); do
			if ! kill -0 "$pid" 2>/dev/null; then
				break
			fi
			# Ours only when the server that answers is the process just started.
			if [ "$(redis-cli -h 127.0.0.1 -p "$port" info server 2>/dev/null | tr -d '\r' | sed -n 's/^process_id://p')" = "$pid" ]; then
				redis_port=$port
				redis_pid=$pid
				redis_pids+=("$pid")
				return 0
			fi
			sleep 0.1
		done
		kill "$pid" 2>/dev/null || true
		wait "$pid" 2>/dev/null || true
	done
	echo "run.sh: could not start redis-server on a free port" >&2
	return 1
}

# stop_redis PID: stop a server that start_redis started.
stop_redis() {
	local pid=$1 p
	kill "$pid" 2>/dev/null || true
	wait "$pid" 2>/dev/null || true
	local kept=()
	for p in "${redis_pids[@]}"; do
		[ "$p" = "$pid" ] || kept+=("$p")
	done
	redis_pids=("${kept[@]}")
}

# write_testcontainers_stand_in DIR: a module at testcontainers' Redis
# module path whose RunContainer starts no container and hands out the
# address of the server this script started for the run
# (MIGRATION_REDIS_ADDR). The gocron-redis-lock tests get their server
# from testcontainers, which needs Docker; with this module replaced in,
# their test files run unchanged.
write_testcontainers_stand_in() {
	local dir=$1
	mkdir -p "$dir"
	cat >"$dir/go.mod" <<-'EOF'
		module github.com/testcontainers/testcontainers-go/modules/redis

		go 1.20
	EOF
	cat >"$dir/redis.go" <<-'EOF'
		// Package redis stands in for testcontainers' Redis module in
		// migration/run.sh: RunContainer returns the redis-server that the
		// script started for this run, named by MIGRATION_REDIS_ADDR.
		package redis

		import (
			"context"
			"errors"
			"os"
		)

		// RedisContainer is the server the script started.
		type RedisContainer struct{ addr string }

		// RunContainer returns the server named by MIGRATION_REDIS_ADDR; the
		// options (container customizers) are ignored.
		func RunContainer(ctx context.Context, opts ...any) (*RedisContainer, error) {
			addr := os.Getenv("MIGRATION_REDIS_ADDR")
			if addr == "" {
				return nil, errors.New("MIGRATION_REDIS_ADDR is not set (run the tests through migration/run.sh)")
			}
			return &RedisContainer{addr: addr}, nil
		}

		// ConnectionString returns redis://host:port.
		func (c *RedisContainer) ConnectionString(ctx context.Context) (string, error) {
			return "redis://" + c.addr, nil
		}

		// Terminate does nothing: the script stops the server after the run.
		func (c *RedisContainer) Terminate(ctx context.Context) error { return nil }
	EOF
}

# test_env ADDR: the environment that points each project's tests at the
# server on ADDR (host:port). gitea's globallock test dials
# 127.0.0.1:6379 when CI is set and TEST_REDIS_URL otherwise, so CI is
# removed for the test binaries.
test_env() {
	local addr=$1
	echo "MIGRATION_REDIS_ADDR=$addr REDIS_URL=$addr REDIS_URL_GR=$addr TEST_REDIS_URL=redis://$addr/0"
}

# prepare PROJECT SIDE: copy the fetched module to $work/PROJECT/SIDE and,
# for SIDE=ours, migrate it. Fails on any error (the caller logs the output).
prepare() {
	local project=$1 side=$2 src=$3
	local dir=$work/$project/$side
	mkdir -p "$work/$project"
	cp -r "$src" "$dir"
	chmod -R u+w "$dir"
	cd "$dir"
	case $project in
	gocron-*)
		write_testcontainers_stand_in "$work/testcontainers-redis"
		go mod edit -replace "github.com/testcontainers/testcontainers-go/modules/redis=$work/testcontainers-redis"
		;;
	esac
	if [ "$side" = redsync ]; then
		if [ -n "$redsync_version" ]; then
			go get "github.com/go-redsync/redsync/v4@$redsync_version"
		fi
	else
		# The README's migration, word for word, then the replace that
		# points the new import path at this checkout.
		# shellcheck disable=SC2046
		sed -i 's#github.com/go-redsync/redsync/v4#github.com/quorumlock/redsync#g' $(grep -rl go-redsync --include=*.go .)
		go mod edit -replace "github.com/quorumlock/redsync=$root"
	fi
	go mod tidy
}

# build PROJECT SIDE: compile the test binary of each package into
# $work/PROJECT/SIDE.bin/.
build() {
	local project=$1 side=$2 pkg name
	local dir=$work/$project/$side bin=$work/$project/$side.bin
	mkdir -p "$bin"
	cd "$dir"
	for pkg in ${packages[$project]}; do
		name=$(echo "$pkg" | tr -c 'A-Za-z0-9\n' _)
		# A package without test files gets no binary: it is only built,
		# and nothing of it runs.
		go test $race -c -o "$bin/$name.test" "$pkg"
		if [ ! -e "$bin/$name.test" ]; then
			go build "$pkg"
		fi
	done
}

# run_once PROJECT SIDE: one run of every test binary of the project
# against a new server; appends "project side test status" lines to
# $results, plus a "(package)" line per package that says whether its
# binary exited 0 (it catches a panic or a time-out).
run_once() {
	local project=$1 side=$2 pkg name out status pattern
	local dir=$work/$project/$side bin=$work/$project/$side.bin
	start_redis
	local pid=$redis_pid addr=127.0.0.1:$redis_port
	for pkg in ${packages[$project]}; do
		name=$(echo "$pkg" | tr -c 'A-Za-z0-9\n' _)
		[ -e "$bin/$name.test" ] || continue
		pattern=${testrun[$project:$pkg]:-.}
		out=$work/$project/$side.$name.log
		status=0
		# shellcheck disable=SC2046
		(cd "$dir/$pkg" && env -u CI $(test_env "$addr") \
			"$bin/$name.test" -test.v -test.count=1 -test.timeout=5m -test.run "$pattern") \
			>"$out" 2>&1 || status=$?
		cat "$out" >>"$work/$project/$side.all.log"
		sed -nE 's/^ *--- (PASS|FAIL|SKIP): ([^ ]+).*/\2\t\1/p' "$out" |
			while IFS=$'\t' read -r test verdict; do
				printf '%s\t%s\t%s\t%s\n' "$project" "$side" "$test" "$verdict"
			done >>"$results"
		if [ "$status" = 0 ]; then
			printf '%s\t%s\t%s\t%s\n' "$project" "$side" "($pkg)" PASS >>"$results"
		else
			printf '%s\t%s\t%s\t%s\n' "$project" "$side" "($pkg)" FAIL >>"$results"
		fi
	done
	stop_redis "$pid"
}

# lock_module DIR: which lock library the module in DIR builds with.
lock_module() {
	local m
	for m in github.com/go-redsync/redsync/v4 github.com/quorumlock/redsync; do
		(cd "$1" && go list -m -f '{{.Path}} {{.Version}}{{with .Replace}} => {{.Path}}{{end}}' "$m" 2>/dev/null) || true
	done
}

broken=0
for project in "${projects[@]}"; do
	log "$project: fetching ${module[$project]}"
	t0=$SECONDS
	if ! info=$(cd "$work" && go mod download -json "${module[$project]}"); then
		echo "$info" >&2
		log "$project: fetch failed"
		broken=1
		continue
	fi
	src=$(echo "$info" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
	log "$project: fetched in $((SECONDS - t0))s ($src)"
	ok=1
	for side in redsync ours; do
		t0=$SECONDS
		if ! (prepare "$project" "$side" "$src") >"$work/$project.$side.prepare.log" 2>&1; then
			log "$project/$side: preparing failed; the end of its log:"
			tail -20 "$work/$project.$side.prepare.log" >&2
			ok=0
			break
		fi
		log "$project/$side: prepared in $((SECONDS - t0))s; uses $(lock_module "$work/$project/$side")"
		t0=$SECONDS
		if ! (build "$project" "$side") >"$work/$project.$side.build.log" 2>&1; then
			log "$project/$side: building the tests failed; the end of its log:"
			tail -30 "$work/$project.$side.build.log" >&2
			ok=0
			break
		fi
		log "$project/$side: tests built in $((SECONDS - t0))s"
	done
	if [ "$ok" = 0 ]; then
		broken=1
		continue
	fi
	for side in redsync ours; do
		t0=$SECONDS
		for i in $(seq "$runs"); do
			run_once "$project" "$side"
		done
		log "$project/$side: $runs runs in $((SECONDS - t0))s"
	done
done

# The table: per project and test, in the order first seen, passes/runs on
# each side ("skip" where every run skipped the test).
echo
awk -F'\t' -v timing="$timing_dependent" '
	BEGIN { n_t = split(timing, t, " "); for (i = 1; i <= n_t; i++) racy[t[i]] = 1 }
	{
		key = $1 "\t" $3
		if (!(key in seen)) { seen[key] = 1; order[++n] = key }
		runs[key, $2]++
		if ($4 == "PASS") pass[key, $2]++
		if ($4 == "SKIP") skip[key, $2]++
	}
	function cell(key, side) {
		if (!runs[key, side]) return "-"
		if (skip[key, side] == runs[key, side]) return "skip"
		return (pass[key, side] + 0) "/" (runs[key, side] - skip[key, side])
	}
	END {
		printf "%-10s %-62s %-9s %-9s\n", "project", "test", "redsync", "ours"
		worse = 0
		for (i = 1; i <= n; i++) {
			key = order[i]; split(key, f, "\t")
			r = cell(key, "redsync"); o = cell(key, "ours")
			mark = ""
			if (racy[f[1] ":" f[2]]) mark = "  (timing-dependent on both sides)"
			else if ((pass[key, "ours"] + 0) < (pass[key, "redsync"] + 0) || o == "-") { mark = "  <- fewer with ours"; worse = 1 }
			printf "%-10s %-62s %-9s %-9s%s\n", f[1], f[2], r, o, mark
		}
		exit worse
	}' "$results" && worse=0 || worse=$?
echo
log "done: $runs runs per side, ${projects[*]}"
if [ "$broken" = 1 ]; then
	exit 2
fi
exit "$worse"
