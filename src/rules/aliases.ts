/**
 * YAML aliases (`*name`) in a rules file: what each one refers to, found in one walk, and the
 * limits that keep a file from costing more than its size.
 *
 * The yaml package resolves an alias by walking the whole document to find its anchor, so a
 * validator that resolves every alias that way takes quadratic time: one anchor and 10,000 aliases
 * (70 KB) took 8 s. Here every alias is mapped to its anchor in a single walk. And since the
 * validator walks what an alias stands for each time it is used, an alias repeats work: a list of
 * 50,000 entries aliased 1,000 times is 50 million entries to check. So both the number of aliases
 * and the number of nodes they repeat are bounded.
 */
import { type Alias, type Document, isAlias, isMap, isNode, isSeq, type Node as YamlNode } from 'yaml';

/** Aliases in one rules file; sharing a `remediation` among a few hundred rules stays well within. */
export const MAX_ALIASES = 1_000;
/** YAML nodes that the aliases of one file repeat, counted each time an alias is used. */
export const MAX_ALIAS_EXPANSION = 100_000;

export interface AliasIndex {
  /** The node each alias refers to: the last one anchored with its name before it, as YAML says. */
  targets: Map<Alias, YamlNode>;
  /** The first limit broken, or an alias to nothing or to a node that contains it; null when none. */
  problem: { offset: number | undefined; message: string } | null;
}

function children(node: YamlNode): YamlNode[] {
  if (isSeq(node)) return node.items.filter(isNode);
  if (isMap(node)) return node.items.flatMap((pair) => [pair.key, pair.value].filter(isNode));
  return [];
}

/** True when ALIAS lies inside NODE: an alias to its own ancestor would stand for itself, forever. */
function contains(node: YamlNode, alias: Alias): boolean {
  const [start, , end] = node.range ?? [0, 0, 0];
  const at = alias.range?.[0] ?? -1;
  return start <= at && at < end;
}

/**
 * Maps every alias of DOC to its anchor and checks the alias limits, in one walk: a node is seen
 * before its children, a key before its value (yaml's own order for "the anchor before the
 * alias"), and its size, with each alias counted as what it stands for, is known once its
 * children are done. An alias's anchor is done before the alias is reached, unless it contains it.
 */
export function indexAliases(doc: Document): AliasIndex {
  const targets = new Map<Alias, YamlNode>();
  if (!isNode(doc.contents)) return { targets, problem: null };
  const anchors = new Map<string, YamlNode>();
  const anchoredSizes = new Map<YamlNode, number>();
  const cap = MAX_ALIAS_EXPANSION + 1;
  let aliasCount = 0;
  let repeated = 0;
  const problemAt = (alias: Alias, message: string): AliasIndex => ({
    targets,
    problem: { offset: alias.range?.[0], message },
  });

  // Each frame: a node, its children still to visit, and the size counted so far.
  const stack: { node: YamlNode; pending: YamlNode[]; size: number }[] = [];
  const enter = (node: YamlNode): AliasIndex | null => {
    let size = 1;
    if (isAlias(node)) {
      aliasCount += 1;
      if (aliasCount > MAX_ALIASES)
        return problemAt(
          node,
          `more than ${MAX_ALIASES} aliases (*${node.source} here); a rules file may use at most ${MAX_ALIASES}`,
        );
      const target = anchors.get(node.source);
      if (target === undefined)
        return problemAt(node, `alias *${node.source} refers to no anchor &${node.source} before it`);
      if (contains(target, node)) return problemAt(node, `alias *${node.source} refers to a node that contains it`);
      targets.set(node, target);
      size = anchoredSizes.get(target) ?? 1;
      repeated = Math.min(repeated + size, cap);
      if (repeated > MAX_ALIAS_EXPANSION)
        return problemAt(
          node,
          `aliases repeat more than ${MAX_ALIAS_EXPANSION} YAML nodes (*${node.source} here stands for ${size === cap ? `more than ${MAX_ALIAS_EXPANSION}` : size}); a rules file may repeat at most ${MAX_ALIAS_EXPANSION}`,
        );
    } else if (node.anchor) {
      anchors.set(node.anchor, node);
    }
    stack.push({ node, pending: children(node).reverse(), size });
    return null;
  };

  const first = enter(doc.contents);
  if (first !== null) return first;
  while (stack.length > 0) {
    const frame = stack[stack.length - 1]!;
    const next = frame.pending.pop();
    if (next !== undefined) {
      const problem = enter(next);
      if (problem !== null) return problem;
      continue;
    }
    stack.pop();
    if (frame.node.anchor && !isAlias(frame.node)) anchoredSizes.set(frame.node, frame.size);
    const parent = stack[stack.length - 1];
    if (parent !== undefined) parent.size = Math.min(parent.size + frame.size, cap);
  }
  return { targets, problem: null };
}
