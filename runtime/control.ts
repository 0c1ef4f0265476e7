// Shared by the code generator and the runtime.

/**
 * The thread control block of a threaded artifact (model.threads.wasm): a job descriptor that the calling thread
 * publishes and the workers read. Byte offsets from the manifest's `memory.control`; the counters sit on
 * their own cache lines.
 */
export const CONTROL = {
  /** Bumped once per job (and to stop): workers wait on it. */
  generation: 0,
  /** Chunks of the current job finished (the caller joins when it reaches the job's chunk count). */
  done: 64,
  /** Threads serving kernels, the caller included (set by the runtime; 0 or 1: none). */
  threads: 128,
  /** Non-zero: workers return from `__worker`. */
  quit: 132,
  /** The job: table index of the kernel, its 6 arguments, the number of work units and of chunks. */
  job: 192,
  /**
   * The next chunk to claim, tagged with the job's generation: (generation mod 2^20) << 12 | chunk.
   * A thread runs a chunk only if its compare-exchange on this word succeeds with the generation it
   * read the job under, so a worker that wakes late never runs a chunk of a job it did not read.
   */
  claim: 256,
  bytes: 320,
} as const;
