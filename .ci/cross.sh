#!/usr/bin/env bash
# Cross builds: the whole module, cmd/swarmhost included, must build and
# vet (which type-checks the tests too) for every platform Go users run.
# One line per target. linux/amd64 is vetted by .ci/run already, so it is
# only built here. All targets share the build cache.
set -euo pipefail
cd "$(dirname "$0")/.."

targets="linux/amd64 linux/arm64 darwin/amd64 darwin/arm64 windows/amd64 windows/arm64"
failed=0
for target in $targets; do
	export GOOS="${target%/*}" GOARCH="${target#*/}"
	start=$SECONDS
	log=$(mktemp)
	status=ok
	if ! go build ./... >"$log" 2>&1; then
		status="FAIL (go build)"
	elif [ "$target" != linux/amd64 ] && ! go vet ./... >>"$log" 2>&1; then
		status="FAIL (go vet)"
	fi
	what="build+vet"
	[ "$target" = linux/amd64 ] && what="build"
	printf '%-14s %-9s %s (%ds)\n' "$target" "$what" "$status" $((SECONDS - start))
	if [ "$status" != ok ]; then
		sed 's/^/    /' "$log"
		failed=1
	fi
	rm -f "$log"
done
unset GOOS GOARCH
exit "$failed"
