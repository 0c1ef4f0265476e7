// Grammar of the model DSL, building the syntax tree directly (embedded actions).

import { EmbeddedActionsParser, type IToken, type TokenType, defaultParserErrorProvider, type IParserErrorMessageProvider } from "chevrotain";
import { Diagnostic, DiagnosticList, type Span } from "../diagnostics.js";
import type { BlockDecl, ConfigField, EntryDecl, EntryInput, Expr, ModelDecl, Stmt, WeightItem, WeightsDecl } from "./ast.js";
import * as T from "./lexer.js";

const label = (t: TokenType) => (t.LABEL ?? t.name);
/** What a user would call the thing each rule parses. */
const ruleWords: Record<string, string> = {
  model: "a config, weights, block or entry declaration",
  stmt: "a statement (let, for, if, return, output or an assignment)",
  weightItems: "a parameter declaration or a for loop",
};
const what = (rule: string) => ruleWords[rule] ?? "an expression";
const found = (t: IToken) => (t.image === "" ? "end of file" : `'${t.image}'`);

/** Words syntax errors for DSL users rather than for grammar authors. */
const messages: IParserErrorMessageProvider = {
  ...defaultParserErrorProvider,
  buildMismatchTokenMessage: ({ expected, actual }) => `expected ${label(expected)} but found ${found(actual)}`,
  buildNotAllInputParsedMessage: ({ firstRedundant }) => `unexpected ${found(firstRedundant)} after the end of the model`,
  buildNoViableAltMessage: ({ actual, ruleName }) => `expected ${what(ruleName)} but found ${found(actual[0])}`,
  buildEarlyExitMessage: ({ actual, ruleName }) => `expected ${what(ruleName)} but found ${found(actual[0])}`,
};

class WfParser extends EmbeddedActionsParser {
  file = "";

  constructor() {
    super(T.allTokens, { recoveryEnabled: true, errorMessageProvider: messages, maxLookahead: 3 });
    this.performSelfAnalysis();
  }

  private span(t: IToken | undefined): Span {
    // tokens are placeholders (or absent) while chevrotain records the grammar
    return { file: this.file, line: t?.startLine ?? 0, col: t?.startColumn ?? 0, length: t?.image?.length ?? 0 };
  }

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
  });

  configBlock = this.RULE("configBlock", (): ConfigField[] => {
    const fields: ConfigField[] = [];
    this.CONSUME(T.Config);
    this.CONSUME(T.LBrace);
    this.MANY(() => {
      const name = this.CONSUME(T.Identifier);
      this.CONSUME(T.Colon);
      const type = this.CONSUME2(T.Identifier).image as ConfigField["type"];
      const keys: string[] = [];
      this.OPTION(() => {
        this.CONSUME(T.From);
        this.AT_LEAST_ONE_SEP({ SEP: T.Comma, DEF: () => keys.push(this.CONSUME3(T.Identifier).image) });
      });
      let value: Expr | undefined;
      this.OPTION2(() => {
        this.CONSUME(T.Assign);
        value = this.SUBRULE(this.expr);
      });
      this.CONSUME(T.Semi);
      this.ACTION(() => fields.push({ name: name.image, type, keys, value, span: this.span(name) }));
    });
    this.CONSUME(T.RBrace);
    return fields;
  });

  weightsBlock = this.RULE("weightsBlock", (): WeightsDecl => {
    const kw = this.CONSUME(T.Weights);
    const prefixes: WeightsDecl["prefixes"] = [];
    this.MANY(() => {
      this.CONSUME(T.Prefix);
      const s = this.CONSUME(T.StringLit);
      let optional = false;
      this.OPTION(() => { this.CONSUME(T.Question); optional = true; });
      this.ACTION(() => prefixes.push({ value: JSON.parse(s.image), optional, span: this.span(s) }));
    });
    this.CONSUME(T.LBrace);
    const items = this.SUBRULE(this.weightItems);
    this.CONSUME(T.RBrace);
    return { prefixes, items, span: this.span(kw) };
  });

  weightItems = this.RULE("weightItems", (): WeightItem[] => {
    const items: WeightItem[] = [];
    this.MANY(() => {
      this.OR([
        {
          ALT: () => {
            const kw = this.CONSUME(T.For);
            const variable = this.CONSUME(T.Identifier).image;
            this.CONSUME(T.In);
            const from = this.SUBRULE(this.expr);
            this.CONSUME(T.DotDot);
            const to = this.SUBRULE2(this.expr);
            this.CONSUME(T.LBrace);
            const inner = this.SUBRULE(this.weightItems);
            this.CONSUME(T.RBrace);
            this.ACTION(() => items.push({ kind: "for", variable, from, to, items: inner, span: this.span(kw) }));
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
            this.ACTION(() => items.push({ kind: "param", name: name.image, indexed, shape, source: JSON.parse(source.image), fallback, cond, span: this.span(name) }));
          },
        },
      ]);
    });
    return items;
  });

  blockDecl = this.RULE("blockDecl", (): BlockDecl => {
    this.CONSUME(T.Block);
    const name = this.CONSUME(T.Identifier);
    const params: string[] = [];
    this.CONSUME(T.LParen);
    this.MANY_SEP({ SEP: T.Comma, DEF: () => params.push(this.CONSUME2(T.Identifier).image) });
    this.CONSUME(T.RParen);
    const body = this.SUBRULE(this.body);
    return { name: name.image, params, body, span: this.span(name) };
  });

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
  });

  body = this.RULE("body", (): Stmt[] => {
    const stmts: Stmt[] = [];
    this.CONSUME(T.LBrace);
    this.MANY(() => { const s = this.SUBRULE(this.stmt); this.ACTION(() => stmts.push(s)); });
    this.CONSUME(T.RBrace);
    return stmts;
  });

  stmt = this.RULE("stmt", (): Stmt =>
    this.OR<Stmt>([
      {
        ALT: () => {
          const kw = this.CONSUME(T.Let);
          const names: { name: string; span: Span }[] = [];
          this.OR2([
            { ALT: () => { const t = this.CONSUME(T.Identifier); names.push({ name: t.image, span: this.span(t) }); } },
            {
              ALT: () => {
                this.CONSUME(T.LBracket);
                this.AT_LEAST_ONE_SEP({ SEP: T.Comma, DEF: () => { const t = this.CONSUME2(T.Identifier); names.push({ name: t.image, span: this.span(t) }); } });
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
  );

  ifStmt = this.RULE("ifStmt", (): Stmt => {
    const kw = this.CONSUME(T.If);
    const cond = this.SUBRULE(this.expr);
    const then = this.SUBRULE(this.body);
    let otherwise: Stmt[] = [];
    this.OPTION(() => {
      this.CONSUME(T.Else);
      this.OR([
        { ALT: () => { otherwise = this.SUBRULE2(this.body); } },
        { ALT: () => { const s = this.SUBRULE(this.ifStmt); otherwise = [s]; } },
      ]);
    });
    return { kind: "if", cond, then, else: otherwise, span: this.span(kw) };
  });

  exprList = this.RULE("exprList", (): Expr[] => {
    const items: Expr[] = [];
    this.MANY_SEP({ SEP: T.Comma, DEF: () => { const e = this.SUBRULE(this.expr); this.ACTION(() => items.push(e)); } });
    return items;
  });

  expr = this.RULE("expr", (): Expr => this.SUBRULE(this.orExpr));

  private binaryLevel(name: string, ops: TokenType[], operand: () => (...args: never[]) => Expr) {
    return this.RULE(name, (): Expr => {
      let left = this.SUBRULE(operand() as never) as Expr;
      this.MANY(() => {
        const op = this.OR(ops.map((t) => ({ ALT: () => this.CONSUME(t) })));
        const right = this.SUBRULE2(operand() as never) as Expr;
        this.ACTION(() => { left = { kind: "binary", op: op?.image, left, right, span: this.span(op) }; });
      });
      return left;
    });
  }

  unaryExpr: () => Expr = this.RULE("unaryExpr", (): Expr =>
    this.OR([
      {
        ALT: () => {
          const op = this.OR2([{ ALT: () => this.CONSUME(T.Minus) }, { ALT: () => this.CONSUME(T.Bang) }]);
          const operand = this.SUBRULE(this.unaryExpr);
          return { kind: "unary", op: op?.image, operand, span: this.span(op) } as Expr;
        },
      },
      { ALT: () => this.SUBRULE(this.postfixExpr) },
    ]),
  );
  mulExpr = this.binaryLevel("mulExpr", [T.Star, T.Slash, T.At, T.Percent], () => this.unaryExpr);
  addExpr = this.binaryLevel("addExpr", [T.Plus, T.Minus], () => this.mulExpr);
  cmpExpr = this.binaryLevel("cmpExpr", [T.EqEq, T.NotEq, T.LtEq, T.GtEq, T.Lt, T.Gt], () => this.addExpr);
  andExpr = this.binaryLevel("andExpr", [T.AndAnd], () => this.cmpExpr);
  orExpr = this.binaryLevel("orExpr", [T.OrOr], () => this.andExpr);

  postfixExpr = this.RULE("postfixExpr", (): Expr => {
    let e = this.SUBRULE(this.primary);
    this.MANY(() => {
      const open = this.CONSUME(T.LBracket);
      const index = this.SUBRULE(this.expr);
      this.CONSUME(T.RBracket);
      this.ACTION(() => { e = { kind: "index", target: e, index, span: this.span(open) }; });
    });
    return e;
  });

  primary = this.RULE("primary", (): Expr =>
    this.OR<Expr>([
      {
        ALT: () => {
          const t = this.CONSUME(T.NumberLit);
          return { kind: "num", value: Number(t.image), isInt: /^\d+$/.test(t.image), span: this.span(t) };
        },
      },
      { ALT: () => { const t = this.CONSUME(T.StringLit); return { kind: "str", value: this.ACTION(() => JSON.parse(t.image)), span: this.span(t) }; } },
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
                this.OR2([
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
    ]),
  );
}

let parser: WfParser | undefined;

/** Parses a `.wf` source; throws a DiagnosticList holding every lexical and syntax error. */
export function parseModel(file: string, text: string): ModelDecl {
  const lexed = T.lexer.tokenize(text);
  const errors: Diagnostic[] = lexed.errors.map(
    (e) => new Diagnostic(`unexpected character '${text.substr(e.offset, e.length)}'`, { file, line: e.line ?? 0, col: e.column ?? 0, length: e.length }),
  );
  parser ??= new WfParser();
  parser.file = file;
  parser.input = lexed.tokens;
  const ast = parser.model();
  for (const e of parser.errors) {
    const t = e.token;
    const atEnd = t.tokenType?.name === "EOF" || isNaN(t.startOffset);
    const lines = text.split("\n");
    const span: Span = atEnd
      ? { file, line: lines.length, col: lines[lines.length - 1].length + 1, length: 1 }
      : { file, line: t.startLine ?? 0, col: t.startColumn ?? 0, length: t.image.length };
    errors.push(new Diagnostic(e.message, span));
  }
  if (errors.length) throw new DiagnosticList(errors);
  return ast;
}
