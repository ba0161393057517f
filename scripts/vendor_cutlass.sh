#!/usr/bin/env bash
# Refreshes third_party/cutlass: the CUTLASS headers that csrc/cuda/tensor_core/*.cu include (and nothing else),
# taken from PyPI's nvidia-cutlass wheel, with its license. Run it after changing which CUTLASS headers the
# tensor-core kernels include, or to move to another CUTLASS release; it needs pip (a package index) and nvcc.
#   bash scripts/vendor_cutlass.sh [version]      (default: the version in third_party/cutlass/VERSION)
set -euo pipefail
cd "$(dirname "$0")/.."
dest=third_party/cutlass
ver=${1:-$(cat "$dest/VERSION")}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
pip download -q --no-deps "nvidia-cutlass==$ver" -d "$tmp" 2> /dev/null
unzip -q -o "$tmp"/nvidia_cutlass-*.whl 'cutlass_library/source/include/*' '*/licenses/LICENSE.txt' -d "$tmp/w"
inc="$tmp/w/cutlass_library/source/include"
# Every header the tensor-core sources reach (nvcc -M follows the includes as the build does).
for src in csrc/cuda/tensor_core/*.cu; do
  nvcc -std=c++20 --expt-relaxed-constexpr -I"$inc" -Icsrc -M "$src"
done | tr ' \\' '\n\n' | grep "^$inc/" | sort -u > "$tmp/deps"
rm -rf "$dest/include"
while read -r h; do
  rel=${h#"$inc"/}
  mkdir -p "$dest/include/$(dirname "$rel")"
  cp "$h" "$dest/include/$rel"
done < "$tmp/deps"
cp "$tmp"/w/*/licenses/LICENSE.txt "$dest/LICENSE.txt"
echo "$ver" > "$dest/VERSION"
echo "vendored $(wc -l < "$tmp/deps") CUTLASS $ver headers into $dest/include ($(du -sh "$dest/include" | cut -f1))"
