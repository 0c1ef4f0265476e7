// The DSL's syntax tree. Every node carries the span it came from.

import type { Span } from "../diagnostics.js";

export type Expr =
  | { kind: "num"; value: number; isInt: boolean; span: Span }
  | { kind: "str"; value: string; span: Span }
  | { kind: "bool"; value: boolean; span: Span }
  | { kind: "ident"; name: string; span: Span }
  | { kind: "list"; items: Expr[]; span: Span }
  | { kind: "call"; callee: string; args: Expr[]; named: { name: string; value: Expr; span: Span }[]; span: Span }
  | { kind: "index"; target: Expr; index: Expr; span: Span }
  | { kind: "unary"; op: string; operand: Expr; span: Span }
  | { kind: "binary"; op: string; left: Expr; right: Expr; span: Span };

export type Stmt =
  | { kind: "let"; names: { name: string; span: Span }[]; value: Expr; span: Span }
  | { kind: "assign"; name: string; value: Expr; span: Span }
  | { kind: "for"; variable: string; from: Expr; to: Expr; body: Stmt[]; span: Span }
  | { kind: "if"; cond: Expr; then: Stmt[]; else: Stmt[]; span: Span }
  | { kind: "return"; value: Expr; span: Span }
  | { kind: "output"; name: string; value: Expr; span: Span };

export interface ConfigField {
  name: string;
  type: "int" | "float" | "bool" | "string";
  keys: string[];
  value?: Expr;
  span: Span;
}

export type WeightItem =
  | { kind: "param"; name: string; indexed: boolean; shape: Expr[]; source: string; fallback?: string; cond?: Expr; span: Span }
  | { kind: "for"; variable: string; from: Expr; to: Expr; items: WeightItem[]; span: Span };

export interface WeightsDecl {
  prefixes: { value: string; optional: boolean; span: Span }[];
  items: WeightItem[];
  span: Span;
}

export interface BlockDecl {
  name: string;
  params: string[];
  body: Stmt[];
  span: Span;
}

export interface EntryInput {
  name: string;
  kind: string;
  shape: Expr[];
  span: Span;
}

export interface EntryDecl {
  name: string;
  inputs: EntryInput[];
  body: Stmt[];
  span: Span;
}

export interface ModelDecl {
  file: string;
  name: string;
  config: ConfigField[];
  weights: WeightsDecl[];
  blocks: BlockDecl[];
  entries: EntryDecl[];
  span: Span;
}
