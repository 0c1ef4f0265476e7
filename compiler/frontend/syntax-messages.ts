// How syntax errors read: words a DSL user would use ("a statement", "'['") rather than the
// grammar's rule and token names.

import { type IParserErrorMessageProvider, type IToken, type TokenType, defaultParserErrorProvider } from "chevrotain";
import * as T from "./lexer.js";

const label = (t: TokenType) => (t.LABEL ?? t.name);
/** What a user would call the thing each rule parses, where naming its first tokens would not do. */
const ruleWords: Record<string, string> = {
  model: "a config, weights, block or entry declaration",
  stmt: "a statement (let, for, if, return, output or an assignment)",
  weightItem: "a parameter declaration or a for loop",
  expr: "an expression",
  operand: "an expression",
};
/** The tokens that may come next, as words: "a name or '['". */
function expectedWords(ruleName: string, paths: TokenType[][]): string {
  const words = [...new Set(paths.map((p) => p[0]).filter((t) => t !== undefined).map(label))];
  if (ruleWords[ruleName] || words.length === 0 || words.length > 4) return ruleWords[ruleName] ?? "an expression";
  return words.length === 1 ? words[0] : `${words.slice(0, -1).join(", ")} or ${words[words.length - 1]}`;
}
const found = (t: IToken) => (t.image === "" ? "end of file" : `'${T.shownText(t.image)}'`);

/** Words syntax errors for DSL users rather than for grammar authors. */
export const messages: IParserErrorMessageProvider = {
  ...defaultParserErrorProvider,
  buildMismatchTokenMessage: ({ expected, actual }) => `expected ${label(expected)} but found ${found(actual)}`,
  buildNotAllInputParsedMessage: ({ firstRedundant }) => `unexpected ${found(firstRedundant)} after the end of the model`,
  buildNoViableAltMessage: ({ expectedPathsPerAlt, actual, ruleName }) => `expected ${expectedWords(ruleName, expectedPathsPerAlt.flat())} but found ${found(actual[0])}`,
  buildEarlyExitMessage: ({ expectedIterationPaths, actual, ruleName }) => `expected ${expectedWords(ruleName, expectedIterationPaths)} but found ${found(actual[0])}`,
};
