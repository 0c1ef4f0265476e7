// Weights in shards: compile --shard-size writes them with their sha-256 in the manifest; the
// Node loader reads each into its slice of memory (verify: the hashes); loadArtifactFromUrl
// fetches them from a real HTTP server on 127.0.0.1 through a Cache-API-shaped store, checking
// every hash before use, reusing cached shards and resuming an interrupted load.

import { createHash } from "node:crypto";
import { type Server, createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { copyFileSync, existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, truncateSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { compileModel } from "../../compiler/compile.js";
import { MAX_SHARDS, type Manifest } from "../../runtime/manifest.js";
import type { Model } from "../../runtime/model.js";
import { loadArtifact, loadArtifactTokenizer, nodeThreads, readManifest } from "../../runtime/node.js";
import { validateManifest } from "../../runtime/validate.js";
import { type LoadProgress, WEIGHTS_CACHE, type WeightsCache, fetchArtifactTokenizer, loadArtifactFromUrl, shardCacheKey } from "../../runtime/web.js";
import { artifactCopier, editManifest, fixtureDir, root } from "../helpers.js";
import { cli, expectOneLine } from "../cli/run-cli.js";
import { refused } from "./refused.js";

/** Parsed JSON, edited freely by the cases. */
type Json = any;

const tmp = mkdtempSync(join(tmpdir(), "wf-shards-"));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));
const model = join(root, "examples", "gpt2.wf");
const weights = fixtureDir("gpt2");
/** An odd shard size: shard boundaries fall inside f32 values. */
const SHARD = 65536 + 7;

const one = join(tmp, "one");
const many = join(tmp, "many");
compileModel(model, weights, one, { context: 16 });
const compiled = compileModel(model, weights, many, { context: 16, shardSize: SHARD });
const manifestOf = (dir: string): Manifest => JSON.parse(readFileSync(join(dir, "manifest.json"), "utf8"));
const shards = manifestOf(many).weights!.shards;
const total = manifestOf(many).memory.weights_bytes;
const sha256 = (b: Uint8Array) => createHash("sha256").update(b).digest("hex");
const esc = (s: string) => s.replace(/[.*+?^${}()|[\]\\/]/g, "\\$&");

/** A fresh copy of `from`, changed by `change(dir)`. */
const copy = artifactCopier(tmp);
/** Flips one byte of a file. */
const corrupt = (path: string, at = 1000) => {
  const b = readFileSync(path);
  b[at] ^= 0x40;
  writeFileSync(path, b);
};

const IDS = [5, 17, 3, 99, 42, 0, 64];
/** The logits' bytes for IDS, and the model disposed. */
const logits = (m: Model) => {
  try {
    return Buffer.from(m.run("forward", { ids: IDS }).logits.buffer);
  } finally {
    m.dispose();
  }
};

describe("compile --shard-size", () => {
  it("writes shards in order, each hashed in the manifest, together the one-shard weights.bin", () => {
    expect(shards.length).toBeGreaterThanOrEqual(3);
    expect(shards.map((s) => s.file)).toEqual(shards.map((_, i) => `weights-${String(i + 1).padStart(5, "0")}-of-${String(shards.length).padStart(5, "0")}.bin`));
    expect(compiled.files).toEqual(expect.arrayContaining(shards.map((s) => s.file)));
    expect(readdirSync(many)).not.toContain("weights.bin");
    const whole = readFileSync(join(one, "weights.bin"));
    expect(whole.byteLength).toBe(total);
    let at = 0;
    for (const s of shards) {
      const bytes = readFileSync(join(many, s.file));
      expect([s.offset, s.bytes, bytes.byteLength]).toEqual([at, Math.min(SHARD, total - at), s.bytes]);
      expect(s.sha256).toBe(sha256(bytes));
      expect(Buffer.compare(bytes, whole.subarray(at, at + s.bytes))).toBe(0);
      at += s.bytes;
    }
    expect(at).toBe(total);
    expect(manifestOf(one).weights).toEqual({ shards: [{ file: "weights.bin", offset: 0, bytes: total, sha256: sha256(whole) }] });
    // the module does not depend on how the weights are split
    for (const f of ["model.wasm", "model.relaxed.wasm", "model.threads.wasm"]) expect(sha256(readFileSync(join(many, f)))).toBe(sha256(readFileSync(join(one, f))));
  });

  it("recompiling over a sharded artifact replaces it whole, shards included", () => {
    const dir = copy(many);
    compileModel(model, weights, dir, { context: 16 });
    expect(readdirSync(dir).sort()).toEqual(["manifest.json", "model.relaxed.wasm", "model.threads.wasm", "model.wasm", "weights.bin"]);
    compileModel(model, weights, dir, { context: 16, shardSize: SHARD });
    expect(readdirSync(dir).sort()).toEqual(readdirSync(many).sort());
  });

  it("takes K, M and G sizes on the command line and refuses others in one line", async () => {
    const out = join(tmp, "cli");
    const r = await cli("compile", model, "--weights", weights, "--out", out, "--context", "16", "--shard-size", "64k");
    expect(r.code, r.err).toBe(0);
    expect(manifestOf(out).weights!.shards.map((s) => s.bytes)).toEqual([65536, 65536, 65536, total - 3 * 65536]);
    const again = await cli("compile", model, "--weights", weights, "--out", out, "--context", "16", "--shard-size", String(2 ** 18));
    expect(again.code, again.err).toBe(0);
    expect(readdirSync(out)).toContain("weights.bin");
    const what = "a size in bytes from 64K to 2G \\(digits, optionally followed by K, M or G\\)";
    for (const bad of ["12X", "0", "65535", "3G", "1.5M", "-64K", "64KB", ""])
      await expectOneLine(["compile", model, "--weights", weights, "--out", join(tmp, "never"), `--shard-size=${bad}`], new RegExp(`^error\\[WF601\\]: --shard-size should be ${what}, found '${esc(bad)}'$`, "m"));
    expect(existsSync(join(tmp, "never"))).toBe(false);
    expect(() => compileModel(model, weights, join(tmp, "never"), { shardSize: 1000 })).toThrow(/^shardSize should be an integer from 65536 to 2147483648 bytes, found 1000$/);
  });
});

describe("the manifest's shards are checked", () => {
  const base = manifestOf(many) as Json;
  const edited = (change: (m: Json) => void) => {
    const m = structuredClone(base);
    change(m);
    return m;
  };
  const cases: [string, (m: Json) => void, RegExp][] = [
    ["a gap", (m) => (m.weights.shards[1].offset += 1), /^manifest\.json: weights\.shards\[1\]\.offset should be 65543 \(where weights\.shards\[0\] ends\), found 65544$/],
    ["an overlap", (m) => (m.weights.shards[2].offset -= 4), /^manifest\.json: weights\.shards\[2\]\.offset should be 131086 \(where weights\.shards\[1\] ends\), found 131082$/],
    ["a first offset", (m) => (m.weights.shards[0].offset = 16), /^manifest\.json: weights\.shards\[0\]\.offset should be 0 \(where the weights start\), found 16$/],
    ["a string offset", (m) => (m.weights.shards[0].offset = "0"), /^manifest\.json: weights\.shards\[0\]\.offset should be 0 \(where the weights start\), found "0"$/],
    ["an empty shard", (m) => (m.weights.shards[1].bytes = 0), /^manifest\.json: weights\.shards\[1\]\.bytes should be an integer from 1 to \d+ \(the weights' bytes from its offset on\), found 0$/],
    ["bytes past the weights", (m) => (m.weights.shards[3].bytes += 1), new RegExp(`^manifest\\.json: weights\\.shards\\[3\\]\\.bytes should be an integer from 1 to ${total - 3 * SHARD} \\(the weights' bytes from its offset on\\), found ${total - 3 * SHARD + 1}$`)],
    ["a huge shard", (m) => (m.weights.shards[0].bytes = 2 ** 53), /^manifest\.json: weights\.shards\[0\]\.bytes should be an integer from 1 to \d+ .*, found 9007199254740992$/],
    ["fewer bytes", (m) => m.weights.shards.pop(), new RegExp(`^manifest\\.json: weights\\.shards end at byte ${3 * SHARD}, but memory\\.weights_bytes is ${total}$`)],
    ["a shard too many", (m) => m.weights.shards.push({ ...m.weights.shards[0], file: "extra.bin", offset: total }), /^manifest\.json: weights\.shards\[4\] lies past the weights \(the shards before it cover the \d+ bytes of memory\.weights_bytes\)$/],
    ["an upper-case hash", (m) => (m.weights.shards[2].sha256 = m.weights.shards[2].sha256.toUpperCase()), /^manifest\.json: weights\.shards\[2\]\.sha256 should be 64 lower-case hex digits \(a sha-256\), found "[0-9A-F]{40}…"$/],
    ["a short hash", (m) => (m.weights.shards[0].sha256 = "abc123"), /^manifest\.json: weights\.shards\[0\]\.sha256 should be 64 lower-case hex digits \(a sha-256\), found "abc123"$/],
    ["no hash", (m) => delete m.weights.shards[0].sha256, /^manifest\.json: weights\.shards\[0\]\.sha256 should be 64 lower-case hex digits \(a sha-256\), is missing$/],
    ["a path", (m) => (m.weights.shards[1].file = "../weights.bin"), /^manifest\.json: weights\.shards\[1\]\.file should be a file name \(no folder\), found "\.\.\/weights\.bin"$/],
    ["a file twice", (m) => (m.weights.shards[2].file = m.weights.shards[0].file), /^manifest\.json: weights\.shards\[2\]\.file should be a name not used before in the list, found "weights-00001-of-00004\.bin"$/],
    ["no shards", (m) => (m.weights.shards = []), /^manifest\.json: weights\.shards should be a non-empty array, found an array of 0$/],
    ["shards not a list", (m) => (m.weights.shards = {}), /^manifest\.json: weights\.shards should be a non-empty array, found an object$/],
    ["weights not an object", (m) => (m.weights = "weights.bin"), /^manifest\.json: weights should be an object, found "weights\.bin"$/],
  ];
  for (const [name, change, message] of cases) it(`refuses ${name}`, () => refused(() => validateManifest(edited(change)), "WF503", message));

  it("refuses more than MAX_SHARDS shards before looking at one", async () => {
    const m = edited((m) => (m.weights.shards = new Array(MAX_SHARDS + 1).fill(null)));
    await refused(() => validateManifest(m), "WF503", /^manifest\.json: weights\.shards should be at most 99999 shards, found an array of 100000$/);
  });

  it("accepts the compiled ones, and an artifact folder needs them", async () => {
    expect(validateManifest(base)).toEqual(base);
    const none = copy(many, (d) => editManifest(d, (m) => delete m.weights));
    expect(readManifest(none).weights).toBeUndefined();
    await refused(() => loadArtifact(none), "WF503", new RegExp(`^${esc(join(none, "manifest.json"))}: weights should be an object listing the weights' files \\(weights\\.shards\\), found nothing: recompile the artifact$`));
  });
});

describe("loadArtifact reads the shards", () => {
  const expected = loadArtifact(one).then(logits);

  it("into memory: logits equal the one-shard artifact's bit for bit, with or without verify, on 1 or 2 threads", async () => {
    const want = await expected;
    expect(Buffer.compare(logits(await loadArtifact(many)), want)).toBe(0);
    expect(Buffer.compare(logits(await loadArtifact(many, { verify: true })), want)).toBe(0);
    const threaded = logits(await loadArtifact(one, { threads: 2 }));
    expect(Buffer.compare(logits(await loadArtifact(many, { threads: 2, verify: true })), threaded)).toBe(0);
  });

  it("with verify, refuses a shard whose bytes changed, naming it", async () => {
    const dir = copy(many, (d) => corrupt(join(d, shards[2].file)));
    const path = join(dir, shards[2].file);
    await refused(() => loadArtifact(dir, { verify: true }), "WF507", new RegExp(`^${esc(path)}: its sha-256 is [0-9a-f]{64}, the manifest expects ${shards[2].sha256} \\(the file is corrupted or from another build\\)$`));
    // without verify (the default) the bytes are taken as they are
    expect(Buffer.compare(logits(await loadArtifact(dir)), await expected)).not.toBe(0);
    const single = copy(one, (d) => corrupt(join(d, "weights.bin"), 5));
    await refused(() => loadArtifact(single, { verify: true }), "WF507", new RegExp(`^${esc(join(single, "weights.bin"))}: its sha-256 is `));
  });

  it("refuses a short, long or missing shard, naming it with the bytes expected and found", async () => {
    const short = copy(many, (d) => truncateSync(join(d, shards[1].file), 1234));
    await refused(() => loadArtifact(short), "WF507", new RegExp(`^${esc(join(short, shards[1].file))} has 1234 bytes, the manifest expects ${SHARD}$`));
    const long = copy(many, (d) => writeFileSync(join(d, shards[3].file), Buffer.concat([readFileSync(join(d, shards[3].file)), Buffer.alloc(3)])));
    await refused(() => loadArtifact(long), "WF507", new RegExp(`^${esc(join(long, shards[3].file))} has ${shards[3].bytes + 3} bytes, the manifest expects ${shards[3].bytes}$`));
    const missing = copy(many, (d) => rmSync(join(d, shards[0].file)));
    await refused(() => loadArtifact(missing), "WF501", new RegExp(`^${esc(missing)}: missing ${esc(shards[0].file)}$`));
  });
});

/** A Cache-API-shaped store in memory, counting what it is asked. */
class MemoryCache implements WeightsCache {
  readonly entries = new Map<string, Uint8Array>();
  readonly calls: string[] = [];
  async match(key: string) {
    this.calls.push(`match ${key}`);
    const b = this.entries.get(key);
    return b && new Response(b.slice());
  }
  async put(key: string, res: Response) {
    this.calls.push(`put ${key}`);
    this.entries.set(key, new Uint8Array(await res.arrayBuffer()));
  }
  async delete(key: string) {
    this.calls.push(`delete ${key}`);
    return this.entries.delete(key);
  }
}

describe("loadArtifactFromUrl", () => {
  /** The files served, by path: a sharded artifact with the tiny GPT-2's tokenizer. */
  const served = copy(many, (d) => {
    editManifest(d, (m) => (m.tokenizer = "tokenizer.json"));
    copyFileSync(join(root, "examples", "tiny-gpt2", "tokenizer.json"), join(d, "tokenizer.json"));
  });
  /** Paths requested, in order. */
  let requests: string[] = [];
  /** Answers a path differently (a status, or other bytes) while set. */
  let override: (path: string) => number | Uint8Array | undefined = () => undefined;
  let server: Server;
  let base = "";
  beforeAll(async () => {
    server = createServer((req, res) => {
      const path = decodeURIComponent(new URL(req.url!, "http://x").pathname);
      requests.push(path);
      const o = override(path);
      const file = join(served, path.replace(/^\/art\//, ""));
      if (typeof o === "number") return void res.writeHead(o).end();
      if (o === undefined && (!path.startsWith("/art/") || !existsSync(file))) return void res.writeHead(404).end();
      const body = o ?? readFileSync(file);
      // chunks of 16 KiB, so that a shard arrives in several reads
      res.writeHead(200, { "content-type": "application/octet-stream" });
      for (let at = 0; at < body.byteLength; at += 16384) res.write(body.subarray(at, at + 16384));
      res.end();
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}/art`;
  });
  afterAll(() => {
    server.closeAllConnections();
    server.close();
  });
  const fresh = () => {
    requests = [];
    override = () => undefined;
  };
  const shardPaths = shards.map((s) => `/art/${s.file}`);
  const storage = (cache: MemoryCache, opened: string[] = []) => ({ open: async (name: string) => (opened.push(name), cache) });
  const expected = loadArtifact(served).then(logits);

  /** Progress is monotone, of one total, in phase order, and ends ready at the total. */
  function checkProgress(events: LoadProgress[]) {
    const order = ["manifest", "module", "weights", "ready"];
    for (let i = 1; i < events.length; i++) {
      expect(events[i].loaded).toBeGreaterThanOrEqual(events[i - 1].loaded);
      expect(order.indexOf(events[i].phase)).toBeGreaterThanOrEqual(order.indexOf(events[i - 1].phase));
    }
    expect(events.every((e) => e.total === total && e.loaded <= total)).toBe(true);
    expect(events[0]).toEqual({ phase: "manifest", file: "manifest.json", loaded: 0, total, fromCache: false });
    expect(events.at(-1)).toEqual({ phase: "ready", file: "", loaded: total, total, fromCache: false });
  }

  it("loads over HTTP into the cache, then from the cache without a shard request", async () => {
    fresh();
    const cache = new MemoryCache();
    const opened: string[] = [];
    const events: LoadProgress[] = [];
    const m = await loadArtifactFromUrl(base, { cacheStorage: storage(cache, opened), onProgress: (p) => events.push(p) });
    expect(Buffer.compare(logits(m), await expected)).toBe(0);
    expect(opened).toEqual([WEIGHTS_CACHE]);
    expect(requests.filter((p) => p.endsWith(".bin"))).toEqual(shardPaths);
    const module = events.find((e) => e.phase === "module")!.file;
    expect(m.manifest.variants.map((v) => v.file)).toContain(module);
    expect(requests.filter((p) => !p.endsWith(".bin"))).toEqual(["/art/manifest.json", `/art/${module}`]);
    expect([...cache.entries.keys()]).toEqual(shards.map((s) => shardCacheKey(s.sha256)));
    for (const s of shards) expect(sha256(cache.entries.get(shardCacheKey(s.sha256))!)).toBe(s.sha256);
    checkProgress(events);
    const weightEvents = events.filter((e) => e.phase === "weights");
    expect(weightEvents.every((e) => !e.fromCache)).toBe(true);
    // the stream comes in several chunks: more events than shards
    expect(weightEvents.length).toBeGreaterThan(2 * shards.length);
    expect(new Set(weightEvents.map((e) => e.file))).toEqual(new Set(shards.map((s) => s.file)));

    requests = [];
    const again: LoadProgress[] = [];
    expect(Buffer.compare(logits(await loadArtifactFromUrl(base, { cacheStorage: storage(cache), onProgress: (p) => again.push(p) })), await expected)).toBe(0);
    expect(requests.filter((p) => p.endsWith(".bin"))).toEqual([]);
    checkProgress(again);
    expect(again.filter((e) => e.phase === "weights")).toEqual(shards.map((s) => ({ phase: "weights", file: s.file, loaded: s.offset + s.bytes, total, fromCache: true })));
  });

  it("deletes a cached shard that fails its check and fetches it again", async () => {
    fresh();
    const cache = new MemoryCache();
    await loadArtifactFromUrl(base, { cacheStorage: storage(cache) }).then((m) => m.dispose());
    const key = shardCacheKey(shards[1].sha256);
    cache.entries.get(key)![77] ^= 1;
    const short = shardCacheKey(shards[3].sha256);
    cache.entries.set(short, cache.entries.get(short)!.subarray(10));
    requests = [];
    cache.calls.length = 0;
    const events: LoadProgress[] = [];
    expect(Buffer.compare(logits(await loadArtifactFromUrl(base, { cacheStorage: storage(cache), onProgress: (p) => events.push(p) })), await expected)).toBe(0);
    expect(requests.filter((p) => p.endsWith(".bin"))).toEqual([shardPaths[1], shardPaths[3]]);
    expect(cache.calls.filter((c) => !c.startsWith("match"))).toEqual([`delete ${key}`, `put ${key}`, `delete ${short}`, `put ${short}`]);
    expect(sha256(cache.entries.get(key)!)).toBe(shards[1].sha256);
    expect(sha256(cache.entries.get(short)!)).toBe(shards[3].sha256);
    checkProgress(events);
    expect(events.filter((e) => e.phase === "weights" && e.fromCache).map((e) => e.file)).toEqual([shards[0].file, shards[2].file]);
  });

  it("resumes an interrupted load: the shards cached before it are not fetched again", async () => {
    fresh();
    const cache = new MemoryCache();
    override = (p) => (p === shardPaths[2] ? 503 : undefined);
    await refused(() => loadArtifactFromUrl(base, { cacheStorage: storage(cache) }), "WF502", new RegExp(`^${esc(base)}/${esc(shards[2].file)}: HTTP 503 Service Unavailable$`));
    expect([...cache.entries.keys()]).toEqual([shards[0], shards[1]].map((s) => shardCacheKey(s.sha256)));
    fresh();
    expect(Buffer.compare(logits(await loadArtifactFromUrl(base, { cacheStorage: storage(cache) })), await expected)).toBe(0);
    expect(requests.filter((p) => p.endsWith(".bin"))).toEqual(shardPaths.slice(2));
  });

  it("refuses a downloaded shard that fails its check or has the wrong size, naming its URL, and caches none of it", async () => {
    const url = (i: number) => `${esc(base)}/${esc(shards[i].file)}`;
    const bytesOf = (i: number) => readFileSync(join(served, shards[i].file));
    const cases: [number, Uint8Array, RegExp][] = [
      [1, (() => { const b = bytesOf(1); b[5] ^= 2; return b; })(), new RegExp(`^${url(1)}: its sha-256 is [0-9a-f]{64}, the manifest expects ${shards[1].sha256} \\(a corrupted download, or a file of another build\\)$`)],
      [2, bytesOf(2).subarray(0, 40000), new RegExp(`^${url(2)} has 40000 bytes, the manifest expects ${SHARD}$`)],
      [0, Buffer.concat([bytesOf(0), Buffer.alloc(20000)]), new RegExp(`^${url(0)} has at least \\d+ bytes, the manifest expects ${SHARD}$`)],
    ];
    for (const [i, body, message] of cases) {
      fresh();
      const cache = new MemoryCache();
      override = (p) => (p === shardPaths[i] ? body : undefined);
      await refused(() => loadArtifactFromUrl(base, { cacheStorage: storage(cache) }), "WF507", message);
      expect(cache.entries.has(shardCacheKey(shards[i].sha256))).toBe(false);
      expect(cache.entries.size).toBe(i);
    }
  });

  it("without a cache fetches every shard each time; names a missing file; stops on abort; uses the fetch given", async () => {
    fresh();
    const cache = new MemoryCache();
    const opened: string[] = [];
    await loadArtifactFromUrl(base, { cache: false, cacheStorage: storage(cache, opened) }).then((m) => m.dispose());
    await loadArtifactFromUrl(base).then((m) => m.dispose());
    expect(opened).toEqual([]);
    expect(requests.filter((p) => p.endsWith(".bin"))).toEqual([...shardPaths, ...shardPaths]);

    override = (p) => (p === shardPaths[3] ? 404 : undefined);
    await refused(() => loadArtifactFromUrl(base, { cache: false }), "WF501", new RegExp(`^${esc(base)}/${esc(shards[3].file)}: HTTP 404 Not Found$`));
    await refused(() => loadArtifactFromUrl(`${base}/nothing`, { cache: false }), "WF501", new RegExp(`^${esc(base)}/nothing/manifest\\.json: HTTP 404 Not Found$`));

    fresh();
    const ctl = new AbortController();
    const aborted = loadArtifactFromUrl(base, { cacheStorage: storage(cache), signal: ctl.signal, onProgress: (p) => p.phase === "weights" && p.loaded > 0 && ctl.abort() });
    await expect(aborted).rejects.toMatchObject({ name: "AbortError" });
    expect(requests.filter((p) => p.endsWith(".bin"))).toEqual([shardPaths[0]]);
    expect(cache.entries.size).toBe(0);

    fresh();
    const seen: string[] = [];
    const counted: typeof fetch = (input, init) => (seen.push(String(input)), fetch(input, init));
    await loadArtifactFromUrl(`${base}/`, { cache: false, fetch: counted }).then((m) => m.dispose());
    expect(seen.map((u) => new URL(u).pathname)).toEqual(requests);
    expect(requests[0]).toBe("/art/manifest.json");
  });

  it("runs on two threads with the host given", async () => {
    fresh();
    const want = logits(await loadArtifact(served, { threads: 2 }));
    const m = await loadArtifactFromUrl(base, { cache: false, threads: 2, host: nodeThreads });
    expect(m.threads).toBe(2);
    expect(Buffer.compare(logits(m), want)).toBe(0);
  });

  it("imports, statically, only runtime modules free of bare specifiers (a Web Worker has no import map)", () => {
    const seen = new Set<string>();
    const visit = (file: string) => {
      if (seen.has(file)) return;
      seen.add(file);
      const src = readFileSync(join(root, "runtime", file), "utf8");
      for (const [, type, spec] of src.matchAll(/^(?:import|export)\s+(type\s)?[^;]*?from\s+"([^"]+)"/gm)) {
        if (type) continue;
        expect(spec, `${file} imports ${spec}`).toMatch(/^\.\/[a-z-]+\.js$/);
        visit(spec.slice(2, -3) + ".ts");
      }
    };
    visit("web.ts");
    expect([...seen].sort()).toEqual(expect.arrayContaining(["model.ts", "validate.ts", "web.ts"]));
    expect(seen.has("tokenizer.ts")).toBe(false);
  });

  it("fetchArtifactTokenizer: the artifact's tokenizer, tokenizer_config.json optional", async () => {
    fresh();
    const manifest = readManifest(served);
    const tok = (await fetchArtifactTokenizer(base, manifest))!;
    const local = loadArtifactTokenizer(served, manifest)!;
    const text = "The quick brown fox";
    expect(tok.encode(text)).toEqual(local.encode(text));
    expect(tok.decode(tok.encode(text))).toBe(text);
    expect(requests).toEqual(["/art/tokenizer.json", "/art/tokenizer_config.json"]);
    expect(await fetchArtifactTokenizer(base, { ...manifest, tokenizer: undefined })).toBeUndefined();
    override = (p) => (p === "/art/tokenizer.json" ? new TextEncoder().encode("{ nope") : undefined);
    await refused(() => fetchArtifactTokenizer(base, manifest), "WF502", new RegExp(`^${esc(base)}/tokenizer\\.json: not valid JSON \\(.+\\)$`));
  });
});
