#!/usr/bin/env bash
# Checks the api module's protos for changes that break the v1 contracts.
#
# What the protos are compared with:
#   - $BUF_AGAINST, if set (any git revision): only that.
#   - Otherwise each of these that exists:
#       1. the newest release tag of the api module (api/v*): nothing released
#          may break. Before the first release, the commit that brought in
#          api/buf.yaml instead: v1 only grows, so today's protos must still
#          be compatible with the first ones, whatever happened in between;
#       2. the main line before this change: the point where HEAD left main (or
#          origin/main); when that is HEAD itself — working on main — HEAD for
#          uncommitted edits, or HEAD's parent when the tree is clean, so that
#          the last commit is checked too.
# Each base's api/ folder is exported with `git archive` and compared as a plain
# directory, so shallow clones and machines without network work.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
buf=(go tool -modfile="$root/devtools/go.mod" buf)
export GOWORK=off

if ! git rev-parse --verify -q HEAD >/dev/null; then
	echo "breaking: no commits yet; nothing to compare against"
	exit 0
fi

bases=()
if [ -n "${BUF_AGAINST:-}" ]; then
	bases=("$BUF_AGAINST")
else
	release=$(git tag --list 'api/v*' --sort=-version:refname | head -n1)
	if [ -z "$release" ]; then
		release=$(git log --format=%H --diff-filter=A -- api/buf.yaml | tail -n1)
	fi
	[ -n "$release" ] && bases+=("$release")
	mainline=
	for main in main origin/main; do
		if git rev-parse --verify -q "$main^{commit}" >/dev/null; then
			mainline=$(git merge-base HEAD "$main")
			break
		fi
	done
	head=$(git rev-parse HEAD)
	if [ -z "$mainline" ] || [ "$mainline" = "$head" ]; then
		if [ -z "$(git status --porcelain -- api)" ] && git rev-parse --verify -q HEAD^ >/dev/null; then
			mainline=$(git rev-parse HEAD^)
		else
			mainline=$head
		fi
	fi
	bases+=("$mainline")
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
status=0
compared=" "
for base in "${bases[@]}"; do
	if ! commit=$(git rev-parse --verify -q "$base^{commit}"); then
		echo "breaking: base $base is not a revision of this repository" >&2
		exit 1
	fi
	# The release and the main line are often the same commit: compare once.
	[[ $compared == *" $commit "* ]] && continue
	compared+="$commit "
	label="$base (${commit:0:7})"
	if ! git cat-file -e "$base:api/buf.yaml" 2>/dev/null; then
		echo "breaking: $label has no api/buf.yaml; nothing to compare with"
		continue
	fi
	dir="$tmp/$commit"
	mkdir -p "$dir"
	git archive "$base" api | tar -x -C "$dir"
	echo "breaking: comparing api/proto with $label"
	if ! (cd api && "${buf[@]}" breaking --against "$dir/api"); then
		status=1
	fi
done
if [ "$status" -ne 0 ]; then
	echo "breaking: the change breaks a released or mainline v1 contract; add fields or a new package version instead" >&2
	exit 1
fi
echo "breaking: no breaking changes"
