#!/usr/bin/env bash
# Cross builds: the whole module, cmd/swarmhost included, must build for
# every platform Go users run, and its tests must type-check there. One line
# per target; all targets share the build cache. linux/amd64 is built and
# vetted by .ci/run itself. For amd64 we run `go vet ./...`, which compiles
# every dependency and type-checks every package with its tests (so it also
# catches what `go build` would); for arm64, where only the architecture
# differs, `go build ./...`.
set -euo pipefail
cd "$(dirname "$0")/.."

targets="darwin/amd64 windows/amd64 linux/arm64 darwin/arm64 windows/arm64"
failed=0
for target in $targets; do
	export GOOS="${target%/*}" GOARCH="${target#*/}"
	start=$SECONDS
	log=$(mktemp)
	status=ok
	if [ "$GOARCH" = amd64 ]; then
		what="vet"
		go vet ./... >"$log" 2>&1 || status="FAIL (go vet)"
	else
		what="build"
		go build ./... >"$log" 2>&1 || status="FAIL (go build)"
	fi
	printf '%-14s %-6s %s (%ds)\n' "$target" "$what" "$status" $((SECONDS - start))
	if [ "$status" != ok ]; then
		sed 's/^/    /' "$log"
		failed=1
	fi
	rm -f "$log"
done
unset GOOS GOARCH
exit "$failed"
