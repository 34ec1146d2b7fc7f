#!/usr/bin/env bash
# Fails when the generated Go code in api/ is not exactly what `make generate`
# would write from the protos: it generates into a temporary folder and
# compares, so the working tree is never touched.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cd "$root/api"
GOWORK=off go tool -modfile="$root/devtools/go.mod" buf generate --output "$tmp"

list() { (cd "$1" && find . -name '*.pb.go' | sort); }
if ! files=$(diff <(list .) <(list "$tmp")); then
	echo "the set of generated files is not what the protos give (< in the tree, > freshly generated):" >&2
	echo "$files" >&2
	echo "run 'make generate' and commit the result" >&2
	exit 1
fi
status=0
while read -r f; do
	if ! diff -u "$f" "$tmp/$f" >&2; then
		status=1
	fi
done < <(list .)
if [ "$status" -ne 0 ]; then
	echo "generated code is stale: run 'make generate' and commit the result" >&2
	exit 1
fi
echo "generate: generated code matches the protos"
