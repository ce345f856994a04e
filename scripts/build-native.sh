#!/usr/bin/env bash
# Builds the native library into build/ when a source is newer than it (make
# decides). Called by every deno task that loads the library, so a fresh clone
# builds on first use. Quiet unless something is rebuilt or fails.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
if ! command -v g++ >/dev/null 2>&1; then
  echo "cryptgpu: g++ is needed to build the native library (apt-get install g++)" >&2
  exit 1
fi
jobs="$(nproc 2>/dev/null || echo 2)"
out="$(make -C "$root/cuda" -j"$jobs" BUILD="$root/build" "$@" 2>&1)" || {
  echo "$out" >&2
  echo "cryptgpu: building the native library failed" >&2
  exit 1
}
if grep -q -E '(g\+\+|nvcc) ' <<<"$out"; then echo "cryptgpu: native library built in build/" >&2; fi
