#!/usr/bin/env bash
# The C++ and CUDA sources (native/, kernels/, bench/gpu/) against .clang-format: checks by default
# (exit 1 naming each file that would change), rewrites them with --write. Used by `npm run lint` and
# `npm run format`; CI installs clang-format (apt-get install clang-format).
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v clang-format >/dev/null; then
  echo "cpp-format: clang-format is not installed (apt-get install clang-format)" >&2
  exit 1
fi
mapfile -t files < <(git ls-files -co --exclude-standard 'native/*.cc' 'native/*.h' 'native/*.cu' \
  'kernels/*.cu' 'kernels/*.cuh' 'kernels/*.h' 'bench/gpu/*.cu' 'bench/gpu/*.h')
if [ "${1:-}" = "--write" ]; then
  clang-format -i "${files[@]}"
else
  clang-format --dry-run --Werror "${files[@]}"
fi
