// Grammar of the model DSL, building the syntax tree directly (embedded actions).
//
// Error recovery is on, so one parse reports every syntax error. A rule the parser recovered
// from returns a placeholder of its type (configField and weightItem: undefined, which their
// lists skip), so a broken input never makes an action throw. Expressions are parsed as a flat
// list of operands and operators, folded by precedence, so only brackets make the parser
// recurse; limits.ts bounds their depth, and the tree's, before anything recurses on them.

import { EmbeddedActionsParser, type IRecognitionException, type IToken } from "chevrotain";
import { Diagnostic, DiagnosticList, sourceLines, type Span } from "../diagnostics.js";
import type { BlockDecl, ConfigField, ConfigItem, EntryDecl, EntryInput, Expr, ModelDecl, Stmt, WeightItem, WeightsDecl } from "./ast.js";
import * as T from "./lexer.js";
import { binaryOps, foldBinary } from "./operators.js";
import { messages } from "./syntax-messages.js";
import { MAX_ERRORS, MAX_SOURCE_BYTES, MAX_TOKENS, type Problem, checkTokenDepth, checkTreeDepth, utf8Length } from "./limits.js";

class TooManyErrors extends Error {}

/** chevrotain's own recorder of syntax errors (internal, so absent from its typings). */
const saveError = (EmbeddedActionsParser.prototype as unknown as { SAVE_ERROR(e: IRecognitionException): IRecognitionException }).SAVE_ERROR;

class WfParser extends EmbeddedActionsParser {
  file = "";
  /** Decoded value of each string token of the current input. */
  strings = new Map<IToken, string>();

  constructor() {
    super(T.allTokens, { recoveryEnabled: true, errorMessageProvider: messages, maxLookahead: 3 });
    this.performSelfAnalysis();
  }

  private span(t: IToken | undefined): Span {
    // tokens are placeholders while chevrotain records the grammar, and inserted ones in recovery
    const ok = (n: number | undefined) => (n !== undefined && Number.isFinite(n) ? n : 0);
    return { file: this.file, line: ok(t?.startLine), col: ok(t?.startColumn), length: t?.image?.length ?? 0 };
  }

  /** Every syntax error passes here; recovering from each costs a scan, so a parse stops after MAX_ERRORS. */
  SAVE_ERROR(error: IRecognitionException): IRecognitionException {
    if (this.errors.length >= MAX_ERRORS) throw new TooManyErrors();
    return saveError.call(this, error);
  }

  private str(t: IToken): string {
    return this.strings.get(t) ?? "";
  }

  /** Where the placeholder a rule returns after recovering from an error comes from: nowhere. */
  private recoveredSpan(): Span {
    return { file: this.file, line: 0, col: 0 };
  }
  private recoveredExpr = (): Expr => ({ kind: "ident", name: "", span: this.recoveredSpan() });

  model = this.RULE("model", (): ModelDecl => {
    const kw = this.CONSUME(T.Model);
    const name = this.CONSUME(T.Identifier).image;
    const m: ModelDecl = { file: this.file, name, config: [], weights: [], blocks: [], entries: [], span: this.span(kw) };
    this.CONSUME(T.LBrace);
    this.MANY(() => {
      this.OR([
        { ALT: () => { const c = this.SUBRULE(this.configBlock); this.ACTION(() => m.config.push(...c)); } },
        { ALT: () => { const w = this.SUBRULE(this.weightsBlock); this.ACTION(() => m.weights.push(w)); } },
        { ALT: () => { const b = this.SUBRULE(this.blockDecl); this.ACTION(() => m.blocks.push(b)); } },
        { ALT: () => { const e = this.SUBRULE(this.entryDecl); this.ACTION(() => m.entries.push(e)); } },
      ]);
    });
    this.CONSUME(T.RBrace);
    return m;
  }, { recoveryValueFunc: () => ({ file: this.file, name: "", config: [], weights: [], blocks: [], entries: [], span: this.recoveredSpan() }) });

  configBlock = this.RULE("configBlock", (): ConfigItem[] => {
    const items: ConfigItem[] = [];
    this.CONSUME(T.Config);
    this.CONSUME(T.LBrace);
    this.MANY(() => { const f = this.SUBRULE(this.configField); this.ACTION(() => f && items.push(f)); });
    this.CONSUME(T.RBrace);
    return items;
  }, { recoveryValueFunc: () => [] });

  /**
   * `name: type from key, key in lo..=hi = default;` or `require cond;` (a rule of its own, so
   * recovery resumes at the next item). `require` is a keyword only here, before an expression.
   */
  configField = this.RULE("configField", (): ConfigItem | undefined =>
    this.OR<ConfigItem>([
      {
        GATE: () => this.LA(1).image === "require" && this.LA(2).tokenType !== T.Colon,
        ALT: () => {
          const kw = this.CONSUME(T.Identifier);
          const cond = this.SUBRULE(this.expr);
          this.CONSUME(T.Semi);
          return { kind: "require", cond, span: this.span(kw) };
        },
      },
      {
        ALT: () => {
          const name = this.CONSUME2(T.Identifier);
          this.CONSUME(T.Colon);
          let type = this.CONSUME3(T.Identifier).image as ConfigField["type"];
          // `float[]`: a list of numbers
          this.OPTION5(() => { this.CONSUME(T.LBracket); this.CONSUME(T.RBracket); type = `${type}[]` as ConfigField["type"]; });
          const keys: string[] = [];
          this.OPTION(() => {
            this.CONSUME(T.From);
            // a key, or a path into nested objects and lists: rope_scaling.factor, architectures.0
            this.AT_LEAST_ONE_SEP({
              SEP: T.Comma,
              DEF: () => {
                const path = [this.CONSUME4(T.Identifier).image];
                this.MANY(() => {
                  this.CONSUME(T.Dot);
                  path.push(this.OR2([{ ALT: () => this.CONSUME5(T.Identifier).image }, { ALT: () => this.CONSUME(T.NumberLit).image }]));
                });
                this.ACTION(() => keys.push(path.join(".")));
              },
            });
          });
          let range: ConfigField["range"];
          this.OPTION3(() => {
            const kw = this.CONSUME(T.In);
            const lo = this.SUBRULE2(this.expr);
            this.CONSUME(T.DotDot);
            let inclusive = false;
            this.OPTION4(() => { this.CONSUME2(T.Assign); inclusive = true; });
            const hi = this.SUBRULE3(this.expr);
            range = { lo, hi, inclusive, span: this.span(kw) };
          });
          let value: Expr | undefined;
          this.OPTION2(() => {
            this.CONSUME(T.Assign);
            value = this.SUBRULE4(this.expr);
          });
          this.CONSUME2(T.Semi);
          return { kind: "field", name: name.image, type, keys, range, value, span: this.span(name) };
        },
      },
    ]),
  { recoveryValueFunc: () => undefined });

  weightsBlock = this.RULE("weightsBlock", (): WeightsDecl => {
    const kw = this.CONSUME(T.Weights);
    const prefixes: WeightsDecl["prefixes"] = [];
    this.MANY(() => {
      this.CONSUME(T.Prefix);
      const s = this.CONSUME(T.StringLit);
      let optional = false;
      this.OPTION(() => { this.CONSUME(T.Question); optional = true; });
      this.ACTION(() => prefixes.push({ value: this.str(s), optional, span: this.span(s) }));
    });
    this.CONSUME(T.LBrace);
    const items = this.SUBRULE(this.weightItems);
    this.CONSUME(T.RBrace);
    return { prefixes, items, span: this.span(kw) };
  }, { recoveryValueFunc: () => ({ prefixes: [], items: [], span: this.recoveredSpan() }) });

  weightItems = this.RULE("weightItems", (): WeightItem[] => {
    const items: WeightItem[] = [];
    this.MANY(() => { const w = this.SUBRULE(this.weightItem); this.ACTION(() => w && items.push(w)); });
    return items;
  }, { recoveryValueFunc: () => [] });

  /** A parameter or a for loop over more (a rule of its own, so recovery resumes at the next item). */
  weightItem = this.RULE("weightItem", (): WeightItem | undefined =>
    this.OR<WeightItem>([
      {
        ALT: () => {
          const kw = this.CONSUME(T.For);
          const variable = this.CONSUME(T.Identifier).image;
          this.CONSUME(T.In);
          const from = this.SUBRULE(this.expr);
          this.CONSUME(T.DotDot);
          const to = this.SUBRULE2(this.expr);
          this.CONSUME(T.LBrace);
          const items = this.SUBRULE(this.weightItems);
          this.CONSUME(T.RBrace);
          return { kind: "for", variable, from, to, items, span: this.span(kw) };
        },
      },
      {
        ALT: () => {
          const name = this.CONSUME2(T.Identifier);
          let indexed = false;
          this.OPTION(() => { this.CONSUME(T.LBracket); this.CONSUME3(T.Identifier); this.CONSUME(T.RBracket); indexed = true; });
          this.CONSUME(T.Colon);
          this.CONSUME2(T.LBracket);
          const shape = this.SUBRULE(this.exprList);
          this.CONSUME2(T.RBracket);
          this.CONSUME(T.Assign);
          const source = this.CONSUME(T.StringLit);
          let fallback: string | undefined;
          let cond: Expr | undefined;
          this.OPTION2(() => { this.CONSUME(T.Else); fallback = this.CONSUME4(T.Identifier).image; });
          this.OPTION3(() => { this.CONSUME(T.If); cond = this.SUBRULE3(this.expr); });
          this.CONSUME(T.Semi);
          return { kind: "param", name: name.image, indexed, shape, source: this.ACTION(() => this.str(source)), fallback, cond, span: this.span(name) };
        },
      },
    ]),
  { recoveryValueFunc: () => undefined });

  blockDecl = this.RULE("blockDecl", (): BlockDecl => {
    this.CONSUME(T.Block);
    const name = this.CONSUME(T.Identifier);
    const params: string[] = [];
    this.CONSUME(T.LParen);
    this.MANY_SEP({ SEP: T.Comma, DEF: () => { const p = this.CONSUME2(T.Identifier); this.ACTION(() => params.push(p.image)); } });
    this.CONSUME(T.RParen);
    const body = this.SUBRULE(this.body);
    return { name: name.image, params, body, span: this.span(name) };
  }, { recoveryValueFunc: () => ({ name: "", params: [], body: [], span: this.recoveredSpan() }) });

  entryDecl = this.RULE("entryDecl", (): EntryDecl => {
    this.CONSUME(T.Entry);
    const name = this.CONSUME(T.Identifier);
    const inputs: EntryInput[] = [];
    this.CONSUME(T.LParen);
    this.MANY_SEP({
      SEP: T.Comma,
      DEF: () => {
        const n = this.CONSUME2(T.Identifier);
        this.CONSUME(T.Colon);
        const kind = this.CONSUME3(T.Identifier).image;
        let shape: Expr[] = [];
        this.OPTION(() => { this.CONSUME(T.LBracket); shape = this.SUBRULE(this.exprList); this.CONSUME(T.RBracket); });
        this.ACTION(() => inputs.push({ name: n.image, kind, shape, span: this.span(n) }));
      },
    });
    this.CONSUME(T.RParen);
    const body = this.SUBRULE(this.body);
    return { name: name.image, inputs, body, span: this.span(name) };
  }, { recoveryValueFunc: () => ({ name: "", inputs: [], body: [], span: this.recoveredSpan() }) });

  body = this.RULE("body", (): Stmt[] => {
    const stmts: Stmt[] = [];
    this.CONSUME(T.LBrace);
    this.MANY(() => { const s = this.SUBRULE(this.stmt); this.ACTION(() => stmts.push(s)); });
    this.CONSUME(T.RBrace);
    return stmts;
  }, { recoveryValueFunc: () => [] });

  stmt = this.RULE("stmt", (): Stmt =>
    this.OR<Stmt>([
      {
        ALT: () => {
          const kw = this.CONSUME(T.Let);
          const names: { name: string; span: Span }[] = [];
          const bind = (t: IToken) => this.ACTION(() => names.push({ name: t.image, span: this.span(t) }));
          this.OR2([
            { ALT: () => bind(this.CONSUME(T.Identifier)) },
            {
              ALT: () => {
                this.CONSUME(T.LBracket);
                this.AT_LEAST_ONE_SEP({ SEP: T.Comma, DEF: () => bind(this.CONSUME2(T.Identifier)) });
                this.CONSUME(T.RBracket);
              },
            },
          ]);
          this.CONSUME(T.Assign);
          const value = this.SUBRULE(this.expr);
          this.CONSUME(T.Semi);
          return { kind: "let", names, value, span: this.span(kw) };
        },
      },
      {
        ALT: () => {
          const kw = this.CONSUME(T.For);
          const variable = this.CONSUME3(T.Identifier).image;
          this.CONSUME(T.In);
          const from = this.SUBRULE2(this.expr);
          this.CONSUME(T.DotDot);
          const to = this.SUBRULE3(this.expr);
          const body = this.SUBRULE(this.body);
          return { kind: "for", variable, from, to, body, span: this.span(kw) };
        },
      },
      { ALT: () => this.SUBRULE(this.ifStmt) },
      {
        ALT: () => {
          const kw = this.CONSUME(T.Return);
          const value = this.SUBRULE4(this.expr);
          this.CONSUME2(T.Semi);
          return { kind: "return", value, span: this.span(kw) };
        },
      },
      {
        ALT: () => {
          const kw = this.CONSUME(T.Output);
          const name = this.CONSUME4(T.Identifier).image;
          this.CONSUME2(T.Assign);
          const value = this.SUBRULE5(this.expr);
          this.CONSUME3(T.Semi);
          return { kind: "output", name, value, span: this.span(kw) };
        },
      },
      {
        ALT: () => {
          const name = this.CONSUME5(T.Identifier);
          this.CONSUME3(T.Assign);
          const value = this.SUBRULE6(this.expr);
          this.CONSUME4(T.Semi);
          return { kind: "assign", name: name.image, value, span: this.span(name) };
        },
      },
    ]),
  { recoveryValueFunc: (): Stmt => ({ kind: "return", value: this.recoveredExpr(), span: this.recoveredSpan() }) });

  /** `if c {..} else if d {..} else {..}`: the else-if chain is a loop here, a nested `if` in the tree. */
  ifStmt = this.RULE("ifStmt", (): Stmt => {
    const arms: { kw: IToken; cond: Expr; then: Stmt[] }[] = [];
    const kw = this.CONSUME(T.If);
    const cond = this.SUBRULE(this.expr);
    const then = this.SUBRULE(this.body);
    this.ACTION(() => arms.push({ kw, cond, then }));
    this.MANY({
      GATE: () => this.LA(2).tokenType === T.If,
      DEF: () => {
        this.CONSUME(T.Else);
        const kw2 = this.CONSUME2(T.If);
        const cond2 = this.SUBRULE2(this.expr);
        const then2 = this.SUBRULE2(this.body);
        this.ACTION(() => arms.push({ kw: kw2, cond: cond2, then: then2 }));
      },
    });
    let otherwise: Stmt[] = [];
    this.OPTION(() => {
      this.CONSUME2(T.Else);
      otherwise = this.SUBRULE3(this.body);
    });
    return this.ACTION(() => {
      let s: Stmt | undefined;
      for (let i = arms.length - 1; i >= 0; i--) {
        const a = arms[i];
        s = { kind: "if", cond: a.cond, then: a.then, else: s ? [s] : otherwise, span: this.span(a.kw) };
      }
      return s!;
    });
  }, { recoveryValueFunc: (): Stmt => ({ kind: "if", cond: this.recoveredExpr(), then: [], else: [], span: this.recoveredSpan() }) });

  exprList = this.RULE("exprList", (): Expr[] => {
    const items: Expr[] = [];
    this.MANY_SEP({ SEP: T.Comma, DEF: () => { const e = this.SUBRULE(this.expr); this.ACTION(() => items.push(e)); } });
    return items;
  }, { recoveryValueFunc: () => [] });

  expr = this.RULE("expr", (): Expr => {
    const operands = [this.SUBRULE(this.operand)];
    const ops: { op: string; span: Span }[] = [];
    this.MANY(() => {
      const op = this.OR(binaryOps.map((t) => ({ ALT: () => this.CONSUME(t) })));
      const right = this.SUBRULE2(this.operand);
      this.ACTION(() => { ops.push({ op: op.image, span: this.span(op) }); operands.push(right); });
    });
    return this.ACTION(() => foldBinary(operands, ops));
  }, { recoveryValueFunc: this.recoveredExpr });

  /** Prefix signs, a primary, then indexes: `-x[i]` is `-(x[i])`. */
  operand = this.RULE("operand", (): Expr => {
    const signs: IToken[] = [];
    this.MANY(() => {
      const op = this.OR([{ ALT: () => this.CONSUME(T.Minus) }, { ALT: () => this.CONSUME(T.Bang) }]);
      this.ACTION(() => signs.push(op));
    });
    let e = this.OR2<Expr>([
      {
        ALT: () => {
          const t = this.CONSUME(T.NumberLit);
          return { kind: "num", value: Number(t.image), isInt: /^\d+$/.test(t.image), span: this.span(t) };
        },
      },
      { ALT: () => { const t = this.CONSUME(T.StringLit); return { kind: "str", value: this.str(t), span: this.span(t) }; } },
      { ALT: () => { const t = this.CONSUME(T.True); return { kind: "bool", value: true, span: this.span(t) }; } },
      { ALT: () => { const t = this.CONSUME(T.False); return { kind: "bool", value: false, span: this.span(t) }; } },
      { ALT: () => { this.CONSUME(T.LParen); const e = this.SUBRULE(this.expr); this.CONSUME(T.RParen); return e; } },
      {
        ALT: () => {
          const t = this.CONSUME(T.LBracket);
          const items = this.SUBRULE(this.exprList);
          this.CONSUME(T.RBracket);
          return { kind: "list", items, span: this.span(t) };
        },
      },
      {
        ALT: () => {
          const id = this.CONSUME(T.Identifier);
          let call: Expr | undefined;
          this.OPTION(() => {
            this.CONSUME2(T.LParen);
            const args: Expr[] = [];
            const named: { name: string; value: Expr; span: Span }[] = [];
            this.MANY_SEP({
              SEP: T.Comma,
              DEF: () => {
                this.OR3([
                  {
                    GATE: () => this.LA(2).tokenType === T.Colon,
                    ALT: () => {
                      const n = this.CONSUME2(T.Identifier);
                      this.CONSUME(T.Colon);
                      const value = this.SUBRULE2(this.expr);
                      this.ACTION(() => named.push({ name: n.image, value, span: this.span(n) }));
                    },
                  },
                  { ALT: () => { const e = this.SUBRULE3(this.expr); this.ACTION(() => args.push(e)); } },
                ]);
              },
            });
            this.CONSUME2(T.RParen);
            call = { kind: "call", callee: id.image, args, named, span: this.span(id) };
          });
          return call ?? { kind: "ident", name: id.image, span: this.span(id) };
        },
      },
    ]);
    this.MANY2(() => {
      const open = this.CONSUME3(T.LBracket);
      const index = this.SUBRULE4(this.expr);
      this.CONSUME3(T.RBracket);
      this.ACTION(() => { e = { kind: "index", target: e, index, span: this.span(open) }; });
    });
    return this.ACTION(() => {
      for (let i = signs.length - 1; i >= 0; i--) e = { kind: "unary", op: signs[i].image, operand: e, span: this.span(signs[i]) };
      return e;
    });
  }, { recoveryValueFunc: this.recoveredExpr });
}

let parser: WfParser | undefined;

/** Throws the first MAX_ERRORS problems, in source order; `stopped` when the parse gave up early. */
function fail(problems: Problem[], stopped = false): never {
  problems.sort((a, b) => a.span.line - b.span.line || a.span.col - b.span.col);
  const cut = stopped || problems.length > MAX_ERRORS;
  const shown = problems.slice(0, MAX_ERRORS);
  throw new DiagnosticList(shown.map((p, i) => new Diagnostic(p.message, p.span, {
    code: p.code,
    notes: cut && i === shown.length - 1 ? [`stopped after ${shown.length} errors`] : [],
  })));
}

/** Refuses a .wf source of more than MAX_SOURCE_BYTES; a caller may check a file's size before reading it. */
export function checkSourceSize(file: string, bytes: number): void {
  if (bytes <= MAX_SOURCE_BYTES) return;
  fail([{ message: `the model is ${bytes} bytes; a .wf file may have at most ${MAX_SOURCE_BYTES}`, span: { file, line: 1, col: 1, length: 1 }, code: "WF107" }]);
}

/** Parses a `.wf` source; throws a DiagnosticList holding every lexical and syntax error (up to MAX_ERRORS). */
export function parseModel(file: string, source: string): ModelDecl {
  checkSourceSize(file, utf8Length(source));
  // a leading byte order mark is not text (the code frame drops it as well)
  const text = source.replace(/^\ufeff/, "");
  const lexed = T.lexer.tokenize(text);
  const errors: Problem[] = lexed.errors.map((e) => {
    const message = `unexpected ${T.describeChars(text.substr(e.offset, e.length))}`;
    return { message, span: { file, line: e.line ?? 1, col: e.column ?? 1, length: e.length }, code: "WF101" };
  });
  const tokens = lexed.tokens;
  const strings = new Map<IToken, string>();
  for (const t of tokens) {
    if (t.tokenType !== T.StringLit && t.tokenType !== T.UnterminatedString) continue;
    const terminated = t.tokenType === T.StringLit;
    const at = (offset: number, length: number): Span => ({ file, line: t.startLine ?? 1, col: (t.startColumn ?? 1) + offset, length });
    if (!terminated) errors.push({ message: "unterminated string: a string ends with '\"' on the line it starts", span: at(0, 1), code: "WF105" });
    const { value, problems } = T.decodeString(t.image, terminated);
    for (const p of problems) errors.push({ message: p.message, span: at(p.offset, p.length), code: p.code });
    strings.set(t, value);
  }
  // the parser recurses once per bracket: too deep a nesting is reported instead of parsed
  const deep = checkTokenDepth(tokens, file);
  if (deep) fail([...errors, deep]);
  if (tokens.length > MAX_TOKENS) {
    const t = tokens[MAX_TOKENS];
    const span = { file, line: t.startLine ?? 1, col: t.startColumn ?? 1, length: t.image.length };
    fail([{ message: `the model has ${tokens.length} tokens; a .wf file may have at most ${MAX_TOKENS}`, span, code: "WF107" }]);
  }

  parser ??= new WfParser();
  parser.file = file;
  parser.strings = strings;
  parser.input = tokens;
  let ast: ModelDecl | undefined;
  try {
    ast = parser.model();
  } catch (e) {
    if (!(e instanceof TooManyErrors)) throw e;
  }
  const lines = parser.errors.length ? sourceLines(text) : [];
  for (const e of parser.errors) {
    const t = e.token;
    const atEnd = t.tokenType?.name === "EOF" || !Number.isFinite(t.startOffset);
    const span: Span = atEnd
      ? { file, line: lines.length, col: lines[lines.length - 1].length + 1, length: 1 }
      : { file, line: t.startLine ?? 1, col: t.startColumn ?? 1, length: t.image.length };
    errors.push({ message: e.message, span, code: "WF102" });
  }
  parser.strings = new Map();
  if (errors.length || !ast) fail(errors, !ast);
  const tooDeep = checkTreeDepth(ast);
  if (tooDeep) fail([tooDeep]);
  return ast;
}
