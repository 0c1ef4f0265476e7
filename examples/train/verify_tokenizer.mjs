// Dev-only: check that @huggingface/tokenizers (tokenizers.js) reads the
// tokenizer written by train_tiny_gpt2.py exactly as the Python encoder does.
//
//   node examples/train/verify_tokenizer.mjs [model_dir] [cases.json]
//
// cases.json (written by train_tiny_gpt2.py) is a list of
// {text, ids} (ids from the Python encoder; null = only check the round trip,
// optionally with expect_len).  Without cases.json, the Vim user manual files
// are round-tripped.  Exits non-zero on any mismatch.
import { readFileSync, readdirSync, existsSync } from "node:fs";
import { join } from "node:path";
import { Tokenizer } from "@huggingface/tokenizers";

const dir = process.argv[2] ?? "examples/tiny-gpt2";
const tokenizer = new Tokenizer(
  JSON.parse(readFileSync(join(dir, "tokenizer.json"), "utf8")),
  JSON.parse(readFileSync(join(dir, "tokenizer_config.json"), "utf8")),
);

let cases;
if (process.argv[3]) {
  cases = JSON.parse(readFileSync(process.argv[3], "utf8"));
} else {
  const docDir = "/usr/share/vim/vim90/doc";
  cases = existsSync(docDir)
    ? readdirSync(docDir)
        .filter((f) => /^usr_\d+\.txt$/.test(f))
        .sort()
        .map((f) => ({ text: readFileSync(join(docDir, f), "utf8"), ids: null }))
    : [];
  cases.push({ text: "The quick brown fox jumps over the lazy dog.", ids: null });
}

let failures = 0;
let checkedIds = 0;
let roundTrips = 0;
let totalTokens = 0;
for (const [n, c] of cases.entries()) {
  const ids = tokenizer.encode(c.text, { add_special_tokens: false }).ids;
  totalTokens += ids.length;
  if (c.ids) {
    const same = ids.length === c.ids.length && ids.every((v, i) => v === c.ids[i]);
    if (!same) {
      const k = ids.findIndex((v, i) => v !== c.ids[i]);
      console.log(`case ${n}: ids differ at ${k}: js ${JSON.stringify(ids.slice(k, k + 8))} ` +
        `py ${JSON.stringify(c.ids.slice(k, k + 8))}`);
      failures++;
    } else {
      checkedIds++;
    }
  }
  if (c.expect_len != null && c.expect_len !== ids.length) {
    console.log(`case ${n}: js gives ${ids.length} tokens, python ${c.expect_len}`);
    failures++;
  }
  if (ids.length > 0) {
    const back = tokenizer.decode(ids);
    if (back !== c.text) {
      const k = [...back].findIndex((ch, i) => ch !== c.text[i]);
      console.log(`case ${n}: decode(encode(x)) != x near char ${k}: ${JSON.stringify(back.slice(k, k + 30))}`);
      failures++;
    } else {
      roundTrips++;
    }
  }
}
if (failures) {
  console.log(`FAIL: ${failures} mismatches`);
  process.exit(1);
}
console.log(`OK: @huggingface/tokenizers matches python ids on ${checkedIds} cases, ` +
  `decode(encode(x)) == x on ${roundTrips} cases (${totalTokens} tokens)`);
