#!/usr/bin/env bash
# Carried library patches (see third_party/README.md).
#
#   third_party/carry.sh check        every carried tree is exactly its
#                                     upstream release plus its patches, in
#                                     order, and its tests pass
#   third_party/carry.sh new NAME P   write the carried tree's changes that no
#                                     patch holds yet as patches/NAME/P.patch
set -euo pipefail
cd "$(dirname "$0")"

# rebuild NAME DIR: upstream release of NAME plus its patches, in DIR.
rebuild() {
  local name=$1 dir=$2 module version src
  read -r module version < "patches/$name/UPSTREAM"
  src=$(go mod download -json "$module@$version" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
  [ -d "$src" ] || { echo "cannot download $module@$version" >&2; exit 1; }
  rm -rf "$dir"
  cp -r "$src" "$dir"
  chmod -R u+w "$dir"
  for p in patches/"$name"/*.patch; do
    [ -e "$p" ] || continue
    (cd "$dir" && git apply -p1 --whitespace=nowarn "$OLDPWD/$p") || { echo "$p does not apply to $module@$version" >&2; exit 1; }
  done
}

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

case "${1:-}" in
check)
  for up in patches/*/UPSTREAM; do
    name=$(basename "$(dirname "$up")")
    rebuild "$name" "$tmp/$name"
    if ! diff -r "$tmp/$name" "$name" > "$tmp/diff"; then
      echo "third_party/$name is not its upstream release plus its patches:" >&2
      cat "$tmp/diff" >&2
      exit 1
    fi
    echo "third_party/$name: $(cat "$up") + $(ls patches/"$name"/*.patch 2>/dev/null | wc -l) patches, exact"
    (cd "$name" && go test -count=1 ./...)
  done
  ;;
new)
  name=${2:?NAME}; patch=${3:?PATCH}
  rebuild "$name" "$tmp/a"
  cp -r "$name" "$tmp/b"
  (cd "$tmp" && git diff --no-index --no-prefix a b) > "patches/$name/$patch.patch" || true
  [ -s "patches/$name/$patch.patch" ] || { rm "patches/$name/$patch.patch"; echo "no change to carry" >&2; exit 1; }
  echo "wrote patches/$name/$patch.patch; put its description (what, why, upstream link) at its top"
  ;;
*)
  echo "usage: $0 check | new NAME PATCH" >&2; exit 2
  ;;
esac
