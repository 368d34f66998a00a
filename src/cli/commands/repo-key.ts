import { addKeySlot, changePassword, listKeySlots, removeKeySlot, slotOpenedBy } from '../../main/repository/crypto/key-slots';
import type { Backend } from '../../main/repository/backend/backend';
import { RepositoryError } from '../../main/repository/errors';
import type { Command } from '../command';
import { UsageError } from '../command';
import { readNewPassword, REPO_OPTIONS, REPO_USAGE, withRepository } from './repo-common';

export const repoKeyCommand: Command = {
  name: 'key',
  summary: 'manage passwords (key slots): list, add, remove, passwd',
  usage: [
    'Usage: jetvault key list [--json]',
    '       jetvault key add [--label NAME] [--new-password-file FILE]',
    '       jetvault key remove ID',
    '       jetvault key passwd [--new-password-file FILE]',
    '',
    'Every key slot wraps the same master key with its own password, so technicians can each hold one;',
    'a password that already opens a slot is refused (removing a slot must take its password away).',
    REPO_USAGE,
  ].join('\n'),
  options: { ...REPO_OPTIONS, label: { type: 'string' }, 'new-password-file': { type: 'string' } },
  async run({ values, positionals }, io) {
    const [action, arg, ...extra] = positionals;
    if (extra.length > 0) throw new UsageError('too many arguments');
    return withRepository(values, io, 'none', async (repo) => {
      const backend = repo.backend;
      if (action === 'list' || action === undefined) {
        const slots = await listKeySlots(backend, repo.slotId);
        if (values.json) io.out(JSON.stringify(slots, null, 2));
        else for (const s of slots) io.out(`${s.current ? '*' : ' '} ${s.id.slice(0, 8)}  ${s.label.padEnd(16)} ${s.host.padEnd(16)} ${s.created}`);
        return 0;
      }
      if (action === 'add') {
        const password = await readNewPassword(io, values['new-password-file']);
        await refuseShared(backend, password, repo.slotId);
        const id = await addKeySlot(backend, repo.master, password, typeof values.label === 'string' ? values.label : 'added');
        io.out(`added key slot ${id.slice(0, 8)}`);
        return 0;
      }
      if (action === 'remove') {
        if (arg === undefined) throw new UsageError('give the ID of the key slot to remove');
        const matches = (await listKeySlots(backend, repo.slotId)).filter((s) => s.id.startsWith(arg));
        if (matches.length !== 1) throw new UsageError(`"${arg}" matches ${matches.length} key slots`);
        await removeKeySlot(backend, matches[0]!.id, repo.slotId);
        io.out(`removed key slot ${matches[0]!.id.slice(0, 8)}`);
        return 0;
      }
      if (action === 'passwd') {
        const password = await readNewPassword(io, values['new-password-file']);
        await refuseShared(backend, password, repo.slotId);
        const id = await changePassword(backend, repo.master, repo.slotId, password);
        io.out(`password changed (key slot ${id.slice(0, 8)})`);
        return 0;
      }
      throw new UsageError(`unknown action "${action}"`);
    });
  },
};

/**
 * One password per key slot: a second slot with a password that already opens one would keep that
 * password working after its slot is removed or changed (a technician who left, a leaked password).
 */
async function refuseShared(backend: Backend, password: string, current: string): Promise<void> {
  if (password.length === 0) return; // refused with its own message
  const opened = await slotOpenedBy(backend, password);
  if (opened === null) return;
  throw new RepositoryError(
    'invalid',
    opened === current ? 'that is the password of the key slot in use already: choose another one' : `that password already opens key slot ${opened.slice(0, 8)}: give every key slot a password of its own, so removing one slot takes its password away`,
  );
}
