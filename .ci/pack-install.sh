#!/usr/bin/env bash
# The packages as a user gets them: `npm pack` of @wasmformer/runtime and wasmformer, installed from
# the tarballs in an empty folder outside the repository (no registry copy of either exists), then
# the README's quick start through the installed CLI, a programmatic compile, and runtime imports.
set -euo pipefail
cd "$(dirname "$0")/.."
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
npm pack --silent --workspace runtime --pack-destination "$work" >/dev/null
npm pack --silent --pack-destination "$work" >/dev/null
cd "$work"
npm init -y >/dev/null
npm install --no-audit --no-fund --prefer-offline ./wasmformer-runtime-*.tgz ./wasmformer-0*.tgz >/dev/null
pkg=node_modules/wasmformer
npx wasmformer compile "$pkg/examples/gpt2.wf" --weights "$pkg/examples/tiny-gpt2" --out tiny
npx wasmformer generate tiny --prompt "The quick" --max-new-tokens 8 --threads 1
node --input-type=module -e "
import { compileModel } from 'wasmformer/compiler';
import { loadArtifact } from '@wasmformer/runtime/node';
import { generate } from '@wasmformer/runtime';
compileModel('$pkg/examples/gpt2.wf', '$pkg/examples/tiny-gpt2', 'tiny-api');
const m = await loadArtifact('tiny-api');
if (m.manifest.kind !== 'causal-lm') throw new Error('unexpected artifact kind ' + m.manifest.kind);
const { ids } = await generate(m, [1, 2, 3], { maxNewTokens: 4, stopAtEos: false });
if (ids.length !== 4) throw new Error('expected 4 generated ids, got ' + ids.length);
m.dispose();
console.log('installed packages: CLI, compiler API and runtime imports work');
"
# the runtime alone: its only dependencies are the tokenizer and Jinja
deps="$(node -p "Object.keys(require('./node_modules/@wasmformer/runtime/package.json').dependencies).sort().join(' ')")"
[ "$deps" = "@huggingface/jinja @huggingface/tokenizers" ] || { echo "error: @wasmformer/runtime depends on $deps" >&2; exit 1; }
