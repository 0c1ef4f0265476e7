// Shared by the code generator and the runtime.

/**
 * The thread control block of a threaded artifact (model.threads.wasm): a job descriptor that the calling thread
 * publishes and the workers read. Byte offsets from the manifest's `memory.control`; the counters sit on
 * their own cache lines.
 */
export const CONTROL = {
  /** Bumped once per job (and to stop): workers wait on it. */
  generation: 0,
  /** Workers still running the current job. */
  pending: 64,
  /** Threads serving kernels, the caller included (set by the runtime; 0 or 1: none). */
  threads: 128,
  /** Non-zero: workers return from `__worker`. */
  quit: 132,
  /** The job: table index of the kernel, its 6 arguments, and the number of work units. */
  job: 192,
  bytes: 256,
} as const;
