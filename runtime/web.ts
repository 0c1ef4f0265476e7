// Loading an artifact served over HTTP, in a page or a Web Worker: the manifest, the module the
// host runs best, then the weights shard by shard. Each shard's sha-256 is checked before its
// bytes are used or stored; verified shards are kept in the Cache API under a key made from that
// hash, so a later visit, or a load resumed after an interruption, downloads only what it lacks.
// No Node-only imports, and no static import of a bare specifier (a Web Worker has no import map).

import { ArtifactError, reason } from "./errors.js";
import { pickVariant } from "./features.js";
import type { Manifest, WeightShard } from "./manifest.js";
import { Model } from "./model.js";
import { type ThreadHost, browserThreads } from "./threads.js";
import type { TextTokenizer } from "./tokenizer.js";
import { validateManifest, weightShards } from "./validate.js";

/** Where a load stands, for a progress bar: `loaded` of `total` weights bytes are in place. */
export interface LoadProgress {
  /** The file being loaded: manifest.json, the module, a weights shard; "" once ready. */
  file: string;
  /** Weights bytes read so far (counting a shard being downloaded as its bytes arrive). */
  loaded: number;
  /** All the weights' bytes (the manifest's memory.weights_bytes). */
  total: number;
  /** Whether `file` came from the cache rather than the network. */
  fromCache: boolean;
  phase: "manifest" | "module" | "weights" | "ready";
}

/** The part of the Cache API's `Cache` the loader uses. */
export interface WeightsCache {
  match(key: string): Promise<Response | undefined>;
  put(key: string, response: Response): Promise<void>;
  delete(key: string): Promise<boolean>;
}

/** The part of the Cache API's `CacheStorage` (`caches`) the loader uses. */
export interface WeightsCacheStorage {
  open(name: string): Promise<WeightsCache>;
}

export interface UrlLoadOptions {
  /** Threads running the matrix kernels (default 1); above 1 the page must be cross-origin isolated. */
  threads?: number;
  /** Starts the worker threads (default browserThreads). */
  host?: ThreadHost;
  onProgress?: (p: LoadProgress) => void;
  /** Keep verified shards in the cache and read them from it (default true where `caches` exists). */
  cache?: boolean;
  /** Stops the load: it rejects with the signal's reason. */
  signal?: AbortSignal;
  /** The fetch to use (default the global one). */
  fetch?: typeof fetch;
  /** The cache storage (default globalThis.caches). */
  cacheStorage?: WeightsCacheStorage;
  /** Run-time LoRA adapters to make room for (see LoadOptions.adapters; default 8). */
  adapters?: number;
}

/** The Cache API cache holding weights shards. */
export const WEIGHTS_CACHE = "wasmformer-weights-v1";

/**
 * The cache key of a shard: a URL made of its sha-256 alone, so that equal bytes share one entry
 * and an artifact rebuilt with other weights never meets a stale one. The host is reserved
 * (.invalid): the key is never fetched.
 */
export const shardCacheKey = (sha256: string) => `https://wasmformer.invalid/weights/sha256/${sha256}`;

/** The largest manifest.json read (as in Node): real ones are a few KiB. */
const MAX_MANIFEST_BYTES = 16 << 20;
/** The largest tokenizer file read: large vocabularies take a few MiB. */
const MAX_TOKENIZER_BYTES = 64 << 20;

const join = (base: string, file: string) => `${base.replace(/\/+$/, "")}/${file}`;

/** A successful response for `url`: 404 and 410 are WF501 (a file missing), other failures WF502. */
async function request(get: typeof fetch, url: string, signal: AbortSignal | undefined): Promise<Response> {
  let res: Response;
  try {
    res = await get(url, { signal });
  } catch (e) {
    if (signal?.aborted) throw signal.reason;
    throw new ArtifactError("WF502", `${url}: cannot be fetched (${reason(e)})`);
  }
  if (!res.ok) throw new ArtifactError(res.status === 404 || res.status === 410 ? "WF501" : "WF502", `${url}: HTTP ${res.status}${res.statusText ? ` ${res.statusText}` : ""}`);
  return res;
}

/** Reads a response body chunk by chunk; a failure while reading is WF502 naming `url`. */
async function eachChunk(res: Response, url: string, signal: AbortSignal | undefined, use: (chunk: Uint8Array) => void): Promise<void> {
  if (!res.body) {
    use(new Uint8Array(await res.arrayBuffer()));
    return;
  }
  const reader = res.body.getReader();
  try {
    for (;;) {
      let r: ReadableStreamReadResult<Uint8Array>;
      try {
        r = await reader.read();
      } catch (e) {
        if (signal?.aborted) throw signal.reason;
        throw new ArtifactError("WF502", `${url}: cannot be read (${reason(e)})`);
      }
      if (r.done) return;
      use(r.value);
    }
  } catch (e) {
    reader.cancel().catch(() => {});
    throw e;
  }
}

/** A text file's body, at most `limit` bytes. */
async function readText(res: Response, url: string, limit: number, signal: AbortSignal | undefined): Promise<string> {
  const parts: Uint8Array[] = [];
  let size = 0;
  await eachChunk(res, url, signal, (chunk) => {
    size += chunk.byteLength;
    if (size > limit) throw new ArtifactError("WF502", `${url}: more than ${limit} bytes is too large for this file`);
    parts.push(chunk);
  });
  const all = new Uint8Array(size);
  parts.reduce((at, p) => (all.set(p, at), at + p.byteLength), 0);
  return new TextDecoder().decode(all);
}

async function readJson(get: typeof fetch, url: string, limit: number, signal: AbortSignal | undefined): Promise<unknown> {
  const text = await readText(await request(get, url, signal), url, limit, signal);
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new ArtifactError("WF502", `${url}: not valid JSON (${reason(e)})`);
  }
}

/**
 * A shard's body into a new array of exactly `bytes` bytes (the one copy of the shard held
 * outside linear memory); more or fewer bytes is WF507 naming `url`. `progress` gets the bytes
 * read so far.
 */
async function readShard(res: Response, url: string, bytes: number, signal: AbortSignal | undefined, progress?: (n: number) => void): Promise<Uint8Array<ArrayBuffer>> {
  let out: Uint8Array<ArrayBuffer>;
  try {
    out = new Uint8Array(bytes);
  } catch (e) {
    throw new ArtifactError("WF508", `${url}: cannot allocate the ${bytes} bytes of this shard (${reason(e)})`);
  }
  let at = 0;
  await eachChunk(res, url, signal, (chunk) => {
    if (at + chunk.byteLength > bytes) throw new ArtifactError("WF507", `${url} has at least ${at + chunk.byteLength} bytes, the manifest expects ${bytes}`);
    out.set(chunk, at);
    at += chunk.byteLength;
    progress?.(at);
  });
  if (at !== bytes) throw new ArtifactError("WF507", `${url} has ${at} bytes, the manifest expects ${bytes}`);
  return out;
}

/** crypto.subtle, which pages have only in a secure context (https, or http on localhost). */
function subtleCrypto(url: string): SubtleCrypto {
  const subtle = globalThis.crypto?.subtle;
  if (!subtle) throw new ArtifactError("WF507", `${url}: the weights' sha-256 cannot be checked here: crypto.subtle is missing (serve the page over https or from localhost)`);
  return subtle;
}

async function sha256Hex(subtle: SubtleCrypto, bytes: Uint8Array<ArrayBuffer>): Promise<string> {
  const digest = new Uint8Array(await subtle.digest("SHA-256", bytes));
  return Array.from(digest, (b) => b.toString(16).padStart(2, "0")).join("");
}

/** The cache to use, or undefined: not wanted, no Cache API, or one that cannot be opened (private modes). */
async function openCache(opts: UrlLoadOptions): Promise<WeightsCache | undefined> {
  const storage = opts.cacheStorage ?? (globalThis as { caches?: WeightsCacheStorage }).caches;
  if (opts.cache === false || !storage) return undefined;
  try {
    return await storage.open(WEIGHTS_CACHE);
  } catch {
    return undefined;
  }
}

/**
 * Loads the artifact at `base` (a URL or path of its folder, relative to the page): manifest.json,
 * the variant this host runs best, and every weights shard, from the cache when it holds one and
 * otherwise over the network with progress. A shard is read whole, its sha-256 checked, copied
 * into linear memory and then cached, so at most one shard is held outside the model's memory. A
 * cached shard that fails its check is deleted and downloaded again; a downloaded one that fails
 * is an ArtifactError (WF507) naming its URL, and is not cached. Other failures are
 * ArtifactErrors naming the URL; an aborted `signal` rejects with its reason.
 */
export async function loadArtifactFromUrl(base: string, opts: UrlLoadOptions = {}): Promise<Model> {
  const { threads = 1, signal, onProgress } = opts;
  const get = opts.fetch ?? fetch;
  try {
    signal?.throwIfAborted();
    const manifestUrl = join(base, "manifest.json");
    const manifest = validateManifest(await readJson(get, manifestUrl, MAX_MANIFEST_BYTES, signal), manifestUrl);
    const shards = weightShards(manifest, manifestUrl);
    const total = manifest.memory.weights_bytes;
    const report = (phase: LoadProgress["phase"], file: string, loaded: number, fromCache = false) => onProgress?.({ file, loaded, total, fromCache, phase });
    report("manifest", "manifest.json", 0);
    const subtle = subtleCrypto(join(base, shards[0].file));
    const variant = pickVariant(manifest.variants, { threads });
    if (threads > 1 && !variant.features.includes("threads")) throw new ArtifactError("WF511", `${base}: ${threads} threads need model.threads.wasm and a host with shared WebAssembly memory (a cross-origin isolated page)`);
    report("module", variant.file, 0);
    const moduleUrl = join(base, variant.file);
    const moduleRes = await request(get, moduleUrl, signal);
    let wasm: ArrayBuffer;
    try {
      wasm = await moduleRes.arrayBuffer();
    } catch (e) {
      if (signal?.aborted) throw signal.reason;
      throw new ArtifactError("WF502", `${moduleUrl}: cannot be read (${reason(e)})`);
    }
    const cache = await openCache(opts);

    /** A cached shard that passes its check, or undefined (an entry that fails is deleted). */
    const fromCache = async (s: WeightShard, key: string): Promise<Uint8Array<ArrayBuffer> | undefined> => {
      const res = await cache!.match(key).catch(() => undefined);
      if (!res) return undefined;
      try {
        const bytes = await readShard(res, key, s.bytes, signal);
        if ((await sha256Hex(subtle, bytes)) === s.sha256) return bytes;
      } catch {
        // an unreadable or short entry is replaced like a corrupted one
        if (signal?.aborted) throw signal.reason;
      }
      await cache!.delete(key).catch(() => false);
      return undefined;
    };

    const weights = async (into: Uint8Array) => {
      let loaded = 0;
      for (const s of shards) {
        signal?.throwIfAborted();
        const key = shardCacheKey(s.sha256);
        const hit = cache && (await fromCache(s, key));
        if (hit) {
          into.set(hit, s.offset);
          loaded += s.bytes;
          report("weights", s.file, loaded, true);
          continue;
        }
        const url = join(base, s.file);
        report("weights", s.file, loaded);
        const bytes = await readShard(await request(get, url, signal), url, s.bytes, signal, (n) => report("weights", s.file, loaded + n));
        const sha = await sha256Hex(subtle, bytes);
        if (sha !== s.sha256) throw new ArtifactError("WF507", `${url}: its sha-256 is ${sha}, the manifest expects ${s.sha256} (a corrupted download, or a file of another build)`);
        into.set(bytes, s.offset);
        loaded += s.bytes;
        // the entry's body streams the shard's own array: a Response of the array would copy it
        if (cache) {
          const body = new ReadableStream<Uint8Array>({ start: (c) => (c.enqueue(bytes), c.close()) });
          // a full cache costs the next visit a download, not this load
          await cache.put(key, new Response(body, { headers: { "content-type": "application/octet-stream" } })).catch(() => {});
        }
      }
    };
    const model = await Model.load({ manifest, wasm, weights, location: base, wasmFile: variant.file }, { threads, host: opts.host ?? browserThreads, adapters: opts.adapters });
    if (signal?.aborted) {
      model.dispose();
      throw signal.reason;
    }
    report("ready", "", total);
    return model;
  } catch (e) {
    if (signal?.aborted) throw signal.reason;
    throw e;
  }
}

/**
 * The tokenizer an artifact at `base` ships (manifest `tokenizer`, with tokenizer_config.json
 * beside it when the server has one), or undefined when it has none. Failures are ArtifactErrors
 * naming the URL.
 */
export async function fetchArtifactTokenizer(base: string, manifest: Manifest, opts: { fetch?: typeof fetch; signal?: AbortSignal } = {}): Promise<TextTokenizer | undefined> {
  if (manifest.tokenizer === undefined) return undefined;
  const get = opts.fetch ?? fetch;
  const files = { tokenizer: join(base, manifest.tokenizer), config: join(base, "tokenizer_config.json") };
  const tokenizer = await readJson(get, files.tokenizer, MAX_TOKENIZER_BYTES, opts.signal);
  let config: unknown = {};
  try {
    config = await readJson(get, files.config, MAX_TOKENIZER_BYTES, opts.signal);
  } catch (e) {
    // tokenizer_config.json is optional
    if (!(e instanceof ArtifactError && e.code === "WF501")) throw e;
  }
  // imported here: the tokenizer library is a bare specifier, which a worker without an import map cannot resolve
  const { loadTokenizer } = await import("./tokenizer.js");
  return loadTokenizer(tokenizer, config, files);
}
