// `wasmformer serve`: a static server for the browser kit (examples/web/), the runtime's built ES
// modules, their two dependencies and an artifact folder (or a folder of them), cross-origin
// isolated so that the page can run the threaded module.

import { createReadStream, existsSync, readdirSync, realpathSync, statSync } from "node:fs";
import { type IncomingMessage, type Server, type ServerResponse, createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { dirname, extname, join, sep } from "node:path";
import { fileURLToPath } from "node:url";
import { ArtifactError } from "@wasmformer/runtime/errors";
import { type Kind, command, int, optionError } from "./options.js";

/** The folder of the runtime's built ES modules (@wasmformer/runtime's dist/). */
export function runtimeDir(): string {
  const dir = dirname(fileURLToPath(import.meta.resolve("@wasmformer/runtime")));
  if (!existsSync(join(dir, "index.js"))) throw new Error(`${dir}: the runtime is not built (no index.js; npm run build makes it)`);
  return dir;
}

/** The browser kit: examples/web/ of this package (two levels up from source, three when built). */
export function kitDir(): string {
  for (const up of ["../../examples/web", "../../../examples/web"]) {
    const dir = fileURLToPath(new URL(up, import.meta.url));
    if (existsSync(join(dir, "index.html"))) return dir;
  }
  throw new Error("the browser kit (examples/web/index.html) is missing from this wasmformer package");
}

/** The runtime's dependencies as the kit's import map names them under /vendor/: their browser ES module files. */
export function vendorFiles(): Record<string, string> {
  return {
    "tokenizers.mjs": fileURLToPath(import.meta.resolve("@huggingface/tokenizers")),
    "jinja.js": fileURLToPath(import.meta.resolve("@huggingface/jinja")),
  };
}

const TYPES: Record<string, string> = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".mjs": "text/javascript; charset=utf-8",
  ".css": "text/css; charset=utf-8",
  ".json": "application/json",
  ".map": "application/json",
  ".wasm": "application/wasm",
  ".bin": "application/octet-stream",
  ".jinja": "text/plain; charset=utf-8",
  ".txt": "text/plain; charset=utf-8",
  ".md": "text/plain; charset=utf-8",
  ".svg": "image/svg+xml",
  ".png": "image/png",
  ".ico": "image/x-icon",
};

/** Headers on every answer: cross-origin isolation (COOP + COEP) lets the page share WebAssembly memory with workers. */
const ISOLATION = {
  "cross-origin-opener-policy": "same-origin",
  "cross-origin-embedder-policy": "require-corp",
  "cross-origin-resource-policy": "same-origin",
  "x-content-type-options": "nosniff",
};

const isArtifact = (dir: string) => existsSync(join(dir, "manifest.json"));

/** What DIR serves: one artifact at /artifact/, or each artifact folder inside it at /artifacts/NAME/. */
export function artifactRoutes(dir: string): { single?: string; named: Map<string, string> } {
  const missing = (why: string) => new ArtifactError("WF501", `${dir} is not an artifact folder or a folder of artifacts (${why})`);
  if (!existsSync(dir)) throw missing("it does not exist");
  if (!statSync(dir).isDirectory()) throw missing("it is not a folder");
  if (isArtifact(dir)) return { single: realpathSync(dir), named: new Map() };
  const named = new Map<string, string>();
  for (const e of readdirSync(dir, { withFileTypes: true }).sort((a, b) => a.name.localeCompare(b.name)))
    if ((e.isDirectory() || e.isSymbolicLink()) && !e.name.startsWith(".") && isArtifact(join(dir, e.name))) named.set(e.name, realpathSync(join(dir, e.name)));
  if (!named.size) throw missing("no manifest.json, and no folder in it has one");
  return { named };
}

/**
 * The path's segments, percent-decoded; undefined when one could climb out of a root or name a
 * hidden file (., .., a dot file, a slash or backslash or NUL hidden in an escape).
 */
function segments(pathname: string): string[] | undefined {
  const parts = pathname.split("/").slice(1);
  const out: string[] = [];
  for (const [i, raw] of parts.entries()) {
    let s: string;
    try {
      s = decodeURIComponent(raw);
    } catch {
      return undefined;
    }
    if (s === "" && i === parts.length - 1) break; // a trailing slash
    if (s === "" || s.startsWith(".") || /[/\\\0]/.test(s)) return undefined;
    out.push(s);
  }
  return out;
}

/** `root`/`parts` when it is a file inside `root` (a real path) once symbolic links are followed. */
function fileUnder(root: string, parts: string[]): string | undefined {
  if (!parts.length) return undefined;
  try {
    const real = realpathSync(join(root, ...parts));
    return real.startsWith(root + sep) && statSync(real).isFile() ? real : undefined;
  } catch {
    return undefined;
  }
}

export interface ServeOptions {
  port?: number;
  host?: string;
  /** Called once per answered request. */
  onRequest?: (entry: { method: string; path: string; status: number }) => void;
}

export interface Serving {
  /** The page's URL (http://HOST:PORT/). */
  url: string;
  /** Where each artifact is: "/artifact/", or "/artifacts/NAME/" by name. */
  artifacts: { name?: string; path: string }[];
  server: Server;
  close(): Promise<void>;
}

/** Starts the server; resolves once it listens. Listen failures (port in use, bad host) are one-line option errors. */
export async function serve(dir: string, opts: ServeOptions = {}): Promise<Serving> {
  const { port = 8080, host = "127.0.0.1", onRequest } = opts;
  const routes = artifactRoutes(dir);
  const kit = realpathSync(kitDir());
  const runtime = realpathSync(runtimeDir());
  const vendor = vendorFiles();

  /** The file a URL path names, or undefined. */
  const locate = (pathname: string): string | undefined => {
    const parts = segments(pathname);
    if (!parts) return undefined;
    const [head, ...rest] = parts;
    if (head === undefined) return join(kit, "index.html");
    if (head === "runtime") return fileUnder(runtime, rest);
    if (head === "vendor") return rest.length === 1 && Object.hasOwn(vendor, rest[0]) ? vendor[rest[0]] : undefined;
    if (head === "artifact") return routes.single ? fileUnder(routes.single, rest) : undefined;
    if (head === "artifacts") {
      const [name, ...file] = rest;
      const root = name === undefined ? undefined : routes.named.get(name);
      return root ? fileUnder(root, file) : undefined;
    }
    return fileUnder(kit, parts);
  };

  const answer = (req: IncomingMessage, res: ServerResponse) => {
    const raw = req.url ?? "/";
    const path = raw.replace(/[?#].*$/s, "");
    const done = (status: number) => onRequest?.({ method: req.method ?? "", path, status });
    if (req.method !== "GET" && req.method !== "HEAD") {
      res.writeHead(405, { ...ISOLATION, allow: "GET, HEAD", "content-type": "text/plain; charset=utf-8" }).end("method not allowed\n");
      return done(405);
    }
    const file = path.startsWith("/") ? locate(path) : undefined;
    let size: number | undefined;
    try {
      size = file === undefined ? undefined : statSync(file).size;
    } catch {
      // gone since it was found
    }
    if (file === undefined || size === undefined) {
      res.writeHead(404, { ...ISOLATION, "content-type": "text/plain; charset=utf-8", "cache-control": "no-store" }).end("not found\n");
      return done(404);
    }
    res.writeHead(200, {
      ...ISOLATION,
      "content-type": TYPES[extname(file).toLowerCase()] ?? "application/octet-stream",
      "content-length": size,
      // revalidated on every load: the page caches weight shards itself (Cache API), by content hash
      "cache-control": "no-cache",
    });
    done(200);
    if (req.method === "HEAD") return void res.end();
    createReadStream(file)
      .on("error", () => res.destroy())
      .pipe(res);
  };

  const server = createServer(answer);
  await new Promise<void>((ok, fail) => {
    server.once("error", (e: NodeJS.ErrnoException) => fail(listenError(e, host, port)));
    server.listen(port, host, () => ok());
  });
  const where = server.address() as AddressInfo;
  const url = `http://${where.family === "IPv6" ? `[${where.address}]` : where.address}:${where.port}/`;
  const artifacts = routes.single ? [{ path: "/artifact/" }] : [...routes.named.keys()].map((name) => ({ name, path: `/artifacts/${encodeURIComponent(name)}/` }));
  return {
    url,
    artifacts,
    server,
    close: () =>
      new Promise<void>((ok) => {
        server.close(() => ok());
        server.closeAllConnections();
      }),
  };
}

/** A listen failure as an error naming the option at fault. */
function listenError(e: NodeJS.ErrnoException, host: string, port: number): Error {
  switch (e.code) {
    case "EADDRINUSE":
      return optionError(`--port ${port}: ${host}:${port} is in use (--port 0 picks a free port)`);
    case "EACCES":
      return optionError(`--port ${port}: permission denied (ports below 1024 need privileges)`);
    case "EADDRNOTAVAIL":
    case "ENOTFOUND":
    case "EAI_AGAIN":
      return optionError(`--host ${host}: not an address of this machine`);
    default:
      return e;
  }
}

/** --host: a name or address, not empty. */
const address: Kind<string> = { what: "a host name or address", parse: (t) => (t ? { value: t } : { found: t }) };

export const serveCommand = command({
  summary: "serve the browser chat page (examples/web/) with an artifact, cross-origin isolated",
  positional: { arg: "DIR", help: "an artifact folder (served at /artifact/) or a folder of artifacts (each at /artifacts/NAME/)" },
  options: {
    port: { kind: int({ min: 0, max: 65535 }), arg: "N", default: "8080", help: "port to listen on (0: any free one)" },
    host: { kind: address, arg: "ADDRESS", default: "127.0.0.1", help: "address to listen on (threads need a secure context: localhost, 127.0.0.1 or HTTPS)" },
  },
  async run(dir, a, io) {
    const served = await serve(dir, {
      port: a.port,
      host: a.host,
      onRequest: ({ method, path, status }) => io.stderr.write(`${status} ${method} ${path}\n`),
    });
    const pages = served.artifacts.map((x) => (x.name === undefined ? served.url : `${served.url}?artifact=.${x.path}`));
    io.stdout.write(`serving ${dir} (Ctrl-C stops):\n${pages.map((p) => `  ${p}`).join("\n")}\n`);
    await new Promise<void>((stop) => {
      const quit = () => {
        process.off("SIGINT", quit);
        process.off("SIGTERM", quit);
        stop();
      };
      process.on("SIGINT", quit);
      process.on("SIGTERM", quit);
    });
    await served.close();
  },
});
