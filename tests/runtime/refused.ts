// Shared by the runtime's error tests: what an ArtifactError must look like, and a tiny wasm
// module writer for modules the compiler would never produce.

import { expect } from "vitest";
import { ArtifactError } from "../../runtime/errors.js";

/** Runs `f` and expects an ArtifactError with `code` whose one-line message matches `message`. */
export async function refused(f: () => unknown, code: string, message: RegExp): Promise<ArtifactError> {
  let err: unknown;
  try {
    await f();
  } catch (e) {
    err = e;
  }
  expect(err, `expected ${code} ${message}`).toBeInstanceOf(ArtifactError);
  const e = err as ArtifactError;
  expect(`${e.code}: ${e.message}`).toMatch(new RegExp(`^${code}: `));
  expect(e.message).toMatch(message);
  expect(e.message).not.toMatch(/[\n\r]/);
  return e;
}

const uleb = (n: number): number[] => {
  const out: number[] = [];
  do {
    let b = n & 0x7f;
    n = Math.floor(n / 128);
    if (n) b |= 0x80;
    out.push(b);
  } while (n);
  return out;
};
const name = (s: string) => {
  const b = [...new TextEncoder().encode(s)];
  return [...uleb(b.length), ...b];
};
const section = (id: number, body: number[]) => [id, ...uleb(body.length), ...body];
const vec = (items: number[][]) => [...uleb(items.length), ...items.flat()];

/**
 * A module exporting empty functions `(i32, i32, i32) -> ()` named `exports`, with custom
 * sections `custom` (name → text) and, if `importFunction`, a function import env.<that name>.
 */
export function tinyModule({ exports = [] as string[], custom = {} as Record<string, string>, importFunction = "" } = {}): Uint8Array {
  const imports = importFunction ? 1 : 0;
  const bytes = [
    ...[0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00],
    ...section(1, vec([[0x60, 3, 0x7f, 0x7f, 0x7f, 0], [0x60, 0, 0]])),
    ...(imports ? section(2, vec([[...name("env"), ...name(importFunction), 0x00, 1]])) : []),
    ...section(3, vec(exports.map(() => [0]))),
    ...section(7, vec(exports.map((e, i) => [...name(e), 0x00, ...uleb(i + imports)]))),
    ...section(10, vec(exports.map(() => [2, 0, 0x0b]))),
    ...Object.entries(custom).flatMap(([n, text]) => section(0, [...name(n), ...new TextEncoder().encode(text)])),
  ];
  return new Uint8Array(bytes);
}
