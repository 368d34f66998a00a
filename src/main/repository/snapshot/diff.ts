/** diff: what changed between two snapshots. Identical subtrees (same tree id) are skipped unread. */
import type { Repository } from '../repo/repository';
import { loadTree } from './snapshot';
import type { TreeNode } from './tree';

export type ChangeKind = 'added' | 'removed' | 'modified' | 'metadata';

export interface Change {
  kind: ChangeKind;
  path: string;
  type: string;
}

const sameContent = (a: TreeNode, b: TreeNode): boolean =>
  a.type === b.type && a.size === b.size && a.target === b.target && (a.content ?? []).join() === (b.content ?? []).join();
const sameMeta = (a: TreeNode, b: TreeNode): boolean => a.mode === b.mode && a.uid === b.uid && a.gid === b.gid && a.mtime === b.mtime;

export async function diffTrees(repo: Repository, a: string | undefined, b: string | undefined, prefix = '', out: Change[] = []): Promise<Change[]> {
  if (a === b) return out;
  const left = new Map((a ? (await loadTree(repo, a)).nodes : []).map((n) => [n.name, n]));
  const right = new Map((b ? (await loadTree(repo, b)).nodes : []).map((n) => [n.name, n]));
  const names = [...new Set([...left.keys(), ...right.keys()])].sort();
  for (const name of names) {
    const path = prefix === '' ? name : `${prefix}/${name}`;
    const l = left.get(name);
    const r = right.get(name);
    if (l && r && l.type === 'dir' && r.type === 'dir') {
      if (!sameMeta(l, r)) out.push({ kind: 'metadata', path, type: 'dir' });
      await diffTrees(repo, l.subtree, r.subtree, path, out);
      continue;
    }
    if (l) {
      if (!r) out.push({ kind: 'removed', path, type: l.type });
      else if (!sameContent(l, r)) out.push({ kind: 'modified', path, type: r.type });
      else if (!sameMeta(l, r)) out.push({ kind: 'metadata', path, type: r.type });
      if (r && l.type === 'dir') await diffTrees(repo, l.subtree, undefined, path, out);
      if (r && r.type === 'dir') await diffTrees(repo, undefined, r.subtree, path, out);
    } else if (r) {
      out.push({ kind: 'added', path, type: r.type });
    }
    if (!r && l?.type === 'dir') await diffTrees(repo, l.subtree, undefined, path, out);
    if (!l && r?.type === 'dir') await diffTrees(repo, undefined, r.subtree, path, out);
  }
  return out;
}
