/**
 * Alertmanager matcher syntax (`name="value"`, `name!="v"`, `name=~"re"`, `name!~"re"`), with the
 * quoting and escaping rules of Alertmanager's classic parser, so that matchers copied from an
 * Alertmanager route behave the same here.
 */
import { LABEL_NAME, own } from '../alert.js';
import { compileAnchored } from './regex.js';
import type { LabelMatcher } from './types.js';

// The name is everything before the first operator (checked afterwards, for a precise message).
// Longest operators first, so `=~` is not read as `=` followed by a value starting with `~`.
const MATCHER = /^\s*(.*?)\s*(=~|!~|!=|=)\s*(.*?)\s*$/s;

/** The value of a label as matchers see it: a missing label is the empty string, as in Alertmanager. */
function labelValue(labels: Record<string, string>, name: string): string {
  return own(labels, name) ?? '';
}

function unquote(raw: string): string | { error: string } {
  let body = raw;
  let expectTrailingQuote = false;
  if (body.startsWith('"')) {
    body = body.slice(1);
    expectTrailingQuote = true;
  }
  let value = '';
  let escaped = false;
  for (let i = 0; i < body.length; i++) {
    const char = body[i] as string;
    if (escaped) {
      escaped = false;
      if (char === 'n') value += '\n';
      else if (char === '"' || char === '\\') value += char;
      // A spurious escape keeps its backslash, so regexes like "\d+" mean what they say.
      else value += `\\${char}`;
      continue;
    }
    if (char === '\\' && i < body.length - 1) {
      escaped = true;
      continue;
    }
    if (char === '"') {
      if (!expectTrailingQuote || i < body.length - 1) {
        return { error: `matcher value contains an unescaped double quote: ${raw}` };
      }
      expectTrailingQuote = false;
      continue;
    }
    value += char;
  }
  if (expectTrailingQuote) return { error: `matcher value is missing its closing double quote: ${raw}` };
  return value;
}

export function parseMatcher(text: string): LabelMatcher | { error: string } {
  const parts = MATCHER.exec(text);
  if (parts === null)
    return { error: `not a matcher (expected name="value", name!="value", name=~"regex" or name!~"regex"): ${text}` };
  const name = parts[1] ?? '';
  const op = parts[2] as LabelMatcher['op'];
  if (!LABEL_NAME.test(name)) return { error: `invalid label name ${JSON.stringify(name)} in matcher: ${text}` };
  const value = unquote(parts[3] ?? '');
  if (typeof value !== 'string') return value;
  const matcher = matcherOf(name, op, value);
  return 'error' in matcher ? { error: `invalid regular expression in matcher ${text}: ${matcher.error}` } : matcher;
}

/**
 * The matcher of a label name, operator and (unquoted) value: how parseMatcher builds one, and how
 * rules validated in a worker thread get theirs back (a function does not cross threads).
 */
export function matcherOf(name: string, op: LabelMatcher['op'], value: string): LabelMatcher | { error: string } {
  if (op === '=' || op === '!=') {
    const wantEqual = op === '=';
    return { name, op, value, matches: (labels) => (labelValue(labels, name) === value) === wantEqual };
  }
  const regex = compileAnchored(value);
  if (!regex.ok) return { error: regex.error };
  const wantMatch = op === '=~';
  const test = regex.test;
  return { name, op, value, matches: (labels) => test(labelValue(labels, name)) === wantMatch };
}
