/** The repository commands (restic conventions), in the order `jetvault --help` lists them. */
import type { Command } from '../command';
import { repoBackupCommand } from './repo-backup';
import { repoCheckCommand } from './repo-check';
import { repoDiffCommand } from './repo-diff';
import { repoForgetCommand } from './repo-forget';
import { repoInitCommand } from './repo-init';
import { repoKeyCommand } from './repo-key';
import { repoLsCommand } from './repo-ls';
import { repoPruneCommand } from './repo-prune';
import { repoRebuildIndexCommand } from './repo-rebuild-index';
import { repoRestoreCommand } from './repo-restore';
import { repoSnapshotsCommand } from './repo-snapshots';
import { repoUnlockCommand } from './repo-unlock';

export const REPO_COMMANDS: readonly Command[] = [
  repoInitCommand,
  repoBackupCommand,
  repoSnapshotsCommand,
  repoLsCommand,
  repoRestoreCommand,
  repoDiffCommand,
  repoCheckCommand,
  repoForgetCommand,
  repoPruneCommand,
  repoRebuildIndexCommand,
  repoKeyCommand,
  repoUnlockCommand,
];
