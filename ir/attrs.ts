// Attribute schemas: each op declares its attributes by name and kind. One schema gives the
// attributes' TypeScript types (AttrsOf), the verifier's check, and the IR text form's printing
// and parsing of each value.

import type { AttrValue, Attrs, Dim } from "./types.js";

/** int: an integer; floats: a list of numbers; dims: a shape (integers and symbols such as "S"); cache: false, true or a cache key; oneOf: one of the strings. */
export type AttrKind = "int" | "float" | "bool" | "string" | "ints" | "floats" | "dims" | "cache" | { readonly oneOf: readonly string[] };

export interface AttrSpec<K extends AttrKind = AttrKind, O extends boolean = boolean> {
  readonly kind: K;
  readonly optional: O;
}
export type Schema = Readonly<Record<string, AttrSpec>>;

const spec = <K extends AttrKind>(kind: K): AttrSpec<K, false> => ({ kind, optional: false });
export const int = spec("int");
export const float = spec("float");
export const bool = spec("bool");
export const string = spec("string");
export const ints = spec("ints");
export const floats = spec("floats");
export const dims = spec("dims");
export const cache = spec("cache");
export const oneOf = <const E extends readonly string[]>(values: E): AttrSpec<{ readonly oneOf: E }, false> => spec({ oneOf: values });
/** The same kind, absent where not set. */
export const optional = <K extends AttrKind>(s: AttrSpec<K, false>): AttrSpec<K, true> => ({ kind: s.kind, optional: true });

type ValueOf<K> = K extends "int" | "float" ? number
  : K extends "bool" ? boolean
  : K extends "string" ? string
  : K extends "ints" | "floats" ? readonly number[]
  : K extends "dims" ? readonly Dim[]
  : K extends "cache" ? boolean | string
  : K extends { readonly oneOf: readonly (infer E)[] } ? E
  : never;

/** The attributes a schema describes, as a plain object type. */
export type AttrsOf<S extends Schema> = {
  readonly [k in keyof S as S[k]["optional"] extends true ? never : k]: ValueOf<S[k]["kind"]>;
} & {
  readonly [k in keyof S as S[k]["optional"] extends true ? k : never]?: ValueOf<S[k]["kind"]>;
};

function fits(kind: AttrKind, v: unknown): boolean {
  if (typeof kind === "object") return typeof v === "string" && kind.oneOf.includes(v);
  switch (kind) {
    case "int": return Number.isInteger(v);
    case "float": return typeof v === "number";
    case "bool": return typeof v === "boolean";
    case "string": return typeof v === "string";
    case "ints": return Array.isArray(v) && v.every((x) => Number.isInteger(x));
    case "floats": return Array.isArray(v) && v.every((x) => typeof x === "number" && Number.isFinite(x));
    case "dims": return Array.isArray(v) && v.every((x) => Number.isInteger(x) || (typeof x === "string" && /^\w+$/.test(x)));
    case "cache": return typeof v === "boolean" || typeof v === "string";
  }
}

export const describeKind = (kind: AttrKind): string =>
  typeof kind === "object" ? `one of ${kind.oneOf.map((s) => JSON.stringify(s)).join(", ")}` : { int: "an integer", float: "a number", bool: "true or false", string: "a string", ints: "a list of integers", floats: "a list of numbers", dims: "a shape", cache: "true, false or a cache key" }[kind];

/** What is wrong with `attrs` under `schema` (an unknown name, a missing or ill-typed value), or undefined. */
export function checkAttrs(schema: Schema, attrs: Attrs): string | undefined {
  for (const [k, v] of Object.entries(attrs)) {
    const s = schema[k];
    if (!s) return `unknown attribute ${k}`;
    if (v === undefined ? !s.optional : !fits(s.kind, v)) return `attribute ${k}=${formatAttr(v)} should be ${describeKind(s.kind)}`;
  }
  for (const [k, s] of Object.entries(schema)) if (!s.optional && attrs[k] === undefined) return `attribute ${k} is missing`;
  return undefined;
}

/** A value as the IR text form writes it: strings quoted, lists in brackets. */
export function formatAttr(v: unknown): string {
  return typeof v === "string" ? JSON.stringify(v) : Array.isArray(v) ? `[${v.join(",")}]` : String(v);
}

/** Reads a value written by formatAttr as `kind`; undefined where the text is not of that kind. */
export function parseAttr(kind: AttrKind, text: string): AttrValue | undefined {
  const t = text.trim();
  let v: unknown;
  if (t === "true" || t === "false") v = t === "true";
  else if (t.startsWith('"')) {
    try {
      v = JSON.parse(t);
    } catch {
      return undefined;
    }
  } else if (t.startsWith("[") && t.endsWith("]")) {
    const inner = t.slice(1, -1).trim();
    v = inner === "" ? [] : inner.split(",").map((x) => (x.trim() === "" || Number.isNaN(Number(x)) ? x.trim() : Number(x)));
  } else if (t !== "" && (!Number.isNaN(Number(t)) || t === "NaN")) v = Number(t);
  return fits(kind, v) ? (v as AttrValue) : undefined;
}
