#!/usr/bin/env bash
# compat/apidiff.sh: the API of redsync v4.18.1 against this module's, with
# golang.org/x/exp/cmd/apidiff, for the root package, redis/ and every
# adapter package at redsync's import paths.
#
# redsync is fetched through the Go module proxy into the module cache,
# copied to a temporary directory and its import prefix rewritten to
# github.com/quorumlock/redsync (the README's one-liner), so that both APIs
# live at the same paths. Any incompatible change fails the script, except
# the one the README names: redsync's redis/goredis wraps go-redis v6, ours
# go-redis v9. Additions are fine and are counted.
#
# Usage: bash compat/apidiff.sh   (from anywhere)
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
redsync_version=v4.18.1
apidiff_version=v0.0.0-20261113113407-e3970619a1a4
export GOWORK=off

apidiff=$(command -v apidiff || true)
if [ -z "$apidiff" ]; then
	apidiff="$(go env GOPATH)/bin/apidiff"
	if [ ! -x "$apidiff" ]; then
		go install "golang.org/x/exp/cmd/apidiff@$apidiff_version"
	fi
fi

tmp=$(mktemp -d)
trap 'chmod -R u+w "$tmp" 2>/dev/null; rm -rf "$tmp"' EXIT

dir=$(cd "$tmp" && go mod download -json "github.com/go-redsync/redsync/v4@$redsync_version" |
	sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
cp -r "$dir" "$tmp/redsync"
chmod -R u+w "$tmp/redsync"
cd "$tmp/redsync"
rm -rf examples
sed -i 's#github.com/go-redsync/redsync/v4#github.com/quorumlock/redsync#g' $(grep -rl go-redsync --include=*.go --include=go.mod .)
# A v4 retraction is not valid under the rewritten (v0) path; valkeycompat
# v1.0.79, which redsync asks for, is not on the module proxy: the API
# compared does not depend on either.
go mod edit -dropretract=v4.14.0 \
	-replace=github.com/valkey-io/valkey-go/valkeycompat@v1.0.79=github.com/valkey-io/valkey-go/valkeycompat@v1.0.77

# Each package at redsync's import paths; all are in this root module.
packages=(
	.
	redis
	redis/goredis
	redis/goredis/v7
	redis/goredis/v8
	redis/goredis/v9
	redis/redigo
	redis/rueidis
	redis/valkeygo
)

# The incompatible change the README lists ("Migrating from redsync v4"):
# redis/goredis takes a go-redis v9 client where redsync's takes a v6 one.
expected_goredis='- NewPool: changed from func(*github.com/go-redis/redis.Client) github.com/quorumlock/redsync/redis.Pool to func(github.com/redis/go-redis/v9.UniversalClient) github.com/quorumlock/redsync/redis.Pool'

failed=0
additions=0
for pkg in "${packages[@]}"; do
	path=github.com/quorumlock/redsync
	[ "$pkg" != . ] && path="$path/$pkg"
	name=$(echo "$pkg" | tr ./ __)
	(cd "$tmp/redsync" && GOFLAGS=-mod=mod "$apidiff" -w "$tmp/$name.old" "$path")
	(cd "$root" && "$apidiff" -w "$tmp/$name.new" "$path")
	incompatible=$("$apidiff" -incompatible "$tmp/$name.old" "$tmp/$name.new")
	all=$("$apidiff" "$tmp/$name.old" "$tmp/$name.new")
	added=$(grep -c '^- ' <<<"$(sed -n '/^Compatible changes:/,$p' <<<"$all")" || true)
	additions=$((additions + added))
	if [ "$pkg" = redis/goredis ] && [ "$incompatible" = "$expected_goredis" ]; then
		printf '%-18s compatible but for the go-redis v6 -> v9 change the README lists; %d additions\n' "$pkg" "$added"
		continue
	fi
	if [ -n "$incompatible" ]; then
		printf '%-18s INCOMPATIBLE with redsync %s:\n%s\n' "$pkg" "$redsync_version" "$incompatible"
		failed=$((failed + 1))
		continue
	fi
	printf '%-18s compatible; %d additions\n' "$pkg" "$added"
done

if [ "$failed" -ne 0 ]; then
	echo "apidiff: $failed of ${#packages[@]} packages break redsync $redsync_version's API" >&2
	exit 1
fi
echo "apidiff: ${#packages[@]} packages, no incompatible change against redsync $redsync_version ($additions additions)"
