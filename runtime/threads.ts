// Worker threads for a threaded artifact (model.threads.wasm): each worker instantiates the
// same module on the shared memory and calls its `__worker(id)`, which serves kernel shares
// until the model is disposed (see the control block in compiler/codegen/wasm.ts). No
// Node-only imports: a host says how to start a worker.

/** Starts one worker thread running `WORKER_SOURCE`'s protocol; resolves once it serves kernels. */
export interface ThreadHost {
  start(module: WebAssembly.Module, memory: WebAssembly.Memory, id: number, generation: number): Promise<{ terminate(): void }>;
}

/**
 * What a worker runs, as source text (so no worker file has to be found next to a bundle): it
 * receives {module, memory, id, generation}, instantiates, says "ready", and serves. `on`/`post` are the
 * host's message functions.
 */
export const WORKER_BODY = `
on(async ({ module, memory, id, generation }) => {
  try {
    const { exports } = await WebAssembly.instantiate(module, { env: { memory } });
    post("ready");
    exports.__worker(id, generation);
  } catch (e) {
    post("error: " + (e && e.message ? e.message : String(e)));
  }
});`;

/** Resolves when the worker says "ready"; rejects on anything else. */
export function whenReady(listen: (f: (msg: unknown) => void) => void, onError: (f: (e: unknown) => void) => void, terminate: () => void) {
  return new Promise<{ terminate(): void }>((resolve, reject) => {
    listen((msg) => (msg === "ready" ? resolve({ terminate }) : reject(new Error(`worker thread failed to start: ${String(msg)}`))));
    onError((e) => reject(e instanceof Error ? e : new Error(String(e))));
  });
}

/** Browser workers (the page must be cross-origin isolated for a shared memory). */
export const browserThreads: ThreadHost = {
  start(module, memory, id, generation) {
    const src = `const on = (f) => { self.onmessage = (e) => f(e.data); }; const post = (m) => self.postMessage(m);${WORKER_BODY}`;
    const url = URL.createObjectURL(new Blob([src], { type: "text/javascript" }));
    const w = new Worker(url);
    const ready = whenReady((f) => (w.onmessage = (e) => f(e.data)), (f) => (w.onerror = (e) => f(e.message)), () => w.terminate());
    w.postMessage({ module, memory, id, generation });
    return ready.finally(() => URL.revokeObjectURL(url));
  },
};

/** Whether this host can run the threaded variant: shared WebAssembly memory and atomics. */
export function hasThreads(): boolean {
  try {
    if (typeof SharedArrayBuffer === "undefined") return false;
    const mem = new WebAssembly.Memory({ initial: 1, maximum: 1, shared: true });
    return mem.buffer instanceof SharedArrayBuffer;
  } catch {
    return false;
  }
}
