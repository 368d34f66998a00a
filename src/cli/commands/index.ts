import type { Command } from '../command';

/** A command as `jetvault --help` lists it; its module is loaded only when it runs. */
export interface CommandEntry {
  name: string;
  summary: string;
  load(): Promise<Command>;
}

/**
 * Every `jetvault` subcommand, in the order `--help` lists them (repository commands in restic's
 * order). Add new commands here. Loading only the command that runs keeps start-up short: a local
 * `jetvault backup` never loads SSH, the history database or the schemas of the app's services.
 * Name and summary must match the command's own (a test checks).
 */
export const COMMANDS: readonly CommandEntry[] = [
  { name: 'device', summary: 'add, import, export, list, inspect, trust and remove devices; database passwords', load: async () => (await import('./device')).deviceCommand },
  { name: 'status', summary: 'the fleet at a glance: protection against each device RPO, alerts, next backup', load: async () => (await import('./fleet-status')).statusCommand },
  {
    name: 'alerts',
    summary: 'open alerts (monitoring rules evaluated now); --all for recent ones, ack ID to acknowledge',
    load: async () => (await import('./fleet-status')).alertsCommand,
  },
  {
    name: 'run-scheduler',
    summary: 'back devices up by their RPO and schedules, watch alerts and deliver webhooks, headless (Ctrl-C stops)',
    load: async () => (await import('./fleet-status')).runSchedulerCommand,
  },
  { name: 'init', summary: 'create an encrypted repository', load: async () => (await import('./repo-init')).repoInitCommand },
  { name: 'backup', summary: 'back up local paths into a new snapshot', load: async () => (await import('./repo-backup')).repoBackupCommand },
  { name: 'snapshots', summary: 'list snapshots', load: async () => (await import('./repo-snapshots')).repoSnapshotsCommand },
  { name: 'ls', summary: "list a snapshot's files", load: async () => (await import('./repo-ls')).repoLsCommand },
  { name: 'restore', summary: 'restore a snapshot into a folder, or onto a device', load: async () => (await import('./repo-restore')).repoRestoreCommand },
  { name: 'diff', summary: 'show what changed between two snapshots', load: async () => (await import('./repo-diff')).repoDiffCommand },
  { name: 'check', summary: 'verify the repository (structure, or data too)', load: async () => (await import('./repo-check')).repoCheckCommand },
  { name: 'copy', summary: 'copy snapshots to another repository (only the data it lacks)', load: async () => (await import('./repo-copy')).repoCopyCommand },
  { name: 'forget', summary: 'remove snapshots by a retention policy', load: async () => (await import('./repo-forget')).repoForgetCommand },
  { name: 'prune', summary: 'delete data no snapshot needs and repack partly used packs', load: async () => (await import('./repo-prune')).repoPruneCommand },
  { name: 'repair-packs', summary: 'rewrite damaged packs without what no longer reads, so backups store it again', load: async () => (await import('./repo-repair-packs')).repoRepairPacksCommand },
  { name: 'rebuild-index', summary: 'rebuild the index from the pack files alone', load: async () => (await import('./repo-rebuild-index')).repoRebuildIndexCommand },
  { name: 'key', summary: 'manage passwords (key slots): list, add, remove, passwd', load: async () => (await import('./repo-key')).repoKeyCommand },
  { name: 'unlock', summary: 'remove stale locks', load: async () => (await import('./repo-unlock')).repoUnlockCommand },
  { name: 'keep', summary: 'keep a completed restore on a device (removes the previous state kept there)', load: async () => (await import('./device-restore')).keepCommand },
  { name: 'rollback', summary: 'roll a device back to what it held before its last restore', load: async () => (await import('./device-restore')).rollbackCommand },
  {
    name: 'drill',
    summary: "restore a device's latest backup into a scratch area on it, verify, clean up and measure the RTO",
    load: async () => (await import('./drill')).drillCommand,
  },
  { name: 'settings', summary: 'show or change console settings', load: async () => (await import('./settings')).settingsCommand },
];
