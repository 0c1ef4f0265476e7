#!/usr/bin/env bash
# The package as a user gets it: `npm pack`, installed from the tarball in an empty folder outside
# the repository, then the README's quick start through the installed CLI and a runtime import.
set -euo pipefail
cd "$(dirname "$0")/.."
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
npm pack --silent --pack-destination "$work" >/dev/null
cd "$work"
npm init -y >/dev/null
npm install --no-audit --no-fund --prefer-offline ./wasmformer-*.tgz >/dev/null
pkg=node_modules/wasmformer
npx wasmformer compile "$pkg/examples/gpt2.wf" --weights "$pkg/examples/tiny-gpt2" --out tiny
npx wasmformer generate tiny --prompt "The quick" --max-new-tokens 8 --threads 1
node --input-type=module -e "
import { loadArtifact } from 'wasmformer/runtime/node';
const m = await loadArtifact('tiny');
if (m.manifest.kind !== 'causal-lm') throw new Error('unexpected artifact kind ' + m.manifest.kind);
m.dispose();
console.log('installed package: CLI and runtime import work');
"
