#!/usr/bin/env bash
# make_image.sh LAYOUT TAG NLAYERS BYTES_PER_LAYER [FILES_PER_LAYER]
# Builds an OCI image layout LAYOUT:TAG with NLAYERS layers, each holding
# BYTES_PER_LAYER bytes of /dev/urandom (split over FILES_PER_LAYER files), so gzip
# cannot shrink them. Uses umoci (init/new/unpack --rootless/repack --refresh-bundle).
set -euo pipefail
layout=$1 tag=$2 nlayers=$3 bytes=$4 files=${5:-1}
(( nlayers >= 1 && nlayers <= 1000 )) || { echo "bad layer count" >&2; exit 2; }
work=$(mktemp -d "${TMPDIR:-/tmp}/berth-mkimg.XXXXXX")
trap 'rm -rf "$work"' EXIT
[[ -d $layout ]] || umoci init --layout "$layout"
umoci new --image "$layout:$tag"
umoci config --image "$layout:$tag" --config.cmd /bin/true >/dev/null
umoci unpack --rootless --image "$layout:$tag" "$work/bundle" >/dev/null
per_file=$(( bytes / files ))
for ((i = 0; i < nlayers; i++)); do
  d="$work/bundle/rootfs/layer$i"
  mkdir -p "$d"
  for ((f = 0; f < files; f++)); do
    head -c "$per_file" /dev/urandom >"$d/f$f.bin"
  done
  umoci repack --refresh-bundle --image "$layout:$tag" "$work/bundle" >/dev/null
done
umoci gc --layout "$layout"
