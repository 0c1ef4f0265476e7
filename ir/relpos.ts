// T5 relative position buckets, bit-for-bit as transformers' `_relative_position_bucket`
// (float32 log, truncation towards zero). Shared by the interpreter and by codegen,
// which precomputes the bucket of every distance into a lookup table.

const f = Math.fround;

export function relativeBucket(relative: number, bidirectional: boolean, numBuckets: number, maxDistance: number): number {
  let buckets = 0;
  let n = numBuckets;
  let rel = relative;
  if (bidirectional) {
    n = Math.floor(n / 2);
    if (rel > 0) buckets += n;
    rel = Math.abs(rel);
  } else {
    rel = -Math.min(rel, 0);
  }
  const maxExact = Math.floor(n / 2);
  if (rel < maxExact) return buckets + rel;
  const ratio = f(f(Math.log(f(f(rel) / f(maxExact)))) / f(Math.log(maxDistance / maxExact)));
  const large = maxExact + Math.trunc(f(ratio * f(n - maxExact)));
  return buckets + Math.min(large, n - 1);
}

/** Bucket of every distance key - query in [-range, range], as an Int32Array indexed by distance + range. */
export function bucketTable(range: number, bidirectional: boolean, numBuckets: number, maxDistance: number): Int32Array {
  const table = new Int32Array(2 * range + 1);
  for (let d = -range; d <= range; d++) table[d + range] = relativeBucket(d, bidirectional, numBuckets, maxDistance);
  return table;
}
