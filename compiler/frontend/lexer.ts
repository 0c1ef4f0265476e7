// Tokens of the model DSL (`.wf` files).

import { createToken, Lexer, type TokenType } from "chevrotain";

export const Identifier = createToken({ name: "Identifier", pattern: /[A-Za-z_][A-Za-z0-9_]*/ });
const kw = (name: string) => createToken({ name: name[0].toUpperCase() + name.slice(1), pattern: new RegExp(`${name}\\b`), longer_alt: Identifier, label: `'${name}'` });

export const Model = kw("model");
export const Config = kw("config");
export const Weights = kw("weights");
export const Prefix = kw("prefix");
export const From = kw("from");
export const Block = kw("block");
export const Entry = kw("entry");
export const Let = kw("let");
export const For = kw("for");
export const In = kw("in");
export const If = kw("if");
export const Else = kw("else");
export const Output = kw("output");
export const Return = kw("return");
export const True = kw("true");
export const False = kw("false");

export const NumberLit = createToken({ name: "NumberLit", pattern: /\d+(\.\d+)?([eE][+-]?\d+)?/, label: "a number" });
export const StringLit = createToken({ name: "StringLit", pattern: /"(?:[^"\\\n]|\\.)*"/, label: "a string" });
const p = (name: string, pattern: RegExp, label: string) => createToken({ name, pattern, label: `'${label}'` });
export const DotDot = p("DotDot", /\.\./, "..");
export const Arrow = p("Arrow", /->/, "->");
export const EqEq = p("EqEq", /==/, "==");
export const NotEq = p("NotEq", /!=/, "!=");
export const LtEq = p("LtEq", /<=/, "<=");
export const GtEq = p("GtEq", />=/, ">=");
export const AndAnd = p("AndAnd", /&&/, "&&");
export const OrOr = p("OrOr", /\|\|/, "||");
export const Lt = p("Lt", /</, "<");
export const Gt = p("Gt", />/, ">");
export const Bang = p("Bang", /!/, "!");
export const Question = p("Question", /\?/, "?");
export const Plus = p("Plus", /\+/, "+");
export const Minus = p("Minus", /-/, "-");
export const Star = p("Star", /\*/, "*");
export const Slash = p("Slash", /\//, "/");
export const At = p("At", /@/, "@");
export const Percent = p("Percent", /%/, "%");
export const Assign = p("Assign", /=/, "=");
export const Colon = p("Colon", /:/, ":");
export const Semi = p("Semi", /;/, ";");
export const Comma = p("Comma", /,/, ",");
export const Dot = p("Dot", /\./, ".");
export const LParen = p("LParen", /\(/, "(");
export const RParen = p("RParen", /\)/, ")");
export const LBrace = p("LBrace", /\{/, "{");
export const RBrace = p("RBrace", /\}/, "}");
export const LBracket = p("LBracket", /\[/, "[");
export const RBracket = p("RBracket", /\]/, "]");
const Comment = createToken({ name: "Comment", pattern: /\/\/[^\n]*/, group: Lexer.SKIPPED });
const WhiteSpace = createToken({ name: "WhiteSpace", pattern: /\s+/, group: Lexer.SKIPPED });

export const allTokens: TokenType[] = [
  WhiteSpace, Comment,
  Model, Config, Weights, Prefix, From, Block, Entry, Let, For, In, If, Else, Output, Return, True, False,
  Identifier, NumberLit, StringLit,
  DotDot, Arrow, EqEq, NotEq, LtEq, GtEq, AndAnd, OrOr, Lt, Gt, Bang, Question, Plus, Minus, Star, Slash, At, Percent,
  Assign, Colon, Semi, Comma, Dot, LParen, RParen, LBrace, RBrace, LBracket, RBracket,
];

export const lexer = new Lexer(allTokens, { positionTracking: "full", ensureOptimizations: false });
