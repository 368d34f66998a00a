import type { Command } from '../command';
import { deviceCommand } from './device';
import { alertsCommand, runSchedulerCommand, statusCommand } from './fleet-status';
import { settingsCommand } from './settings';
import { REPO_COMMANDS } from './repo-commands';

/** Every `jetvault` subcommand, in the order `--help` lists them. Add new commands here. */
export const COMMANDS: readonly Command[] = [deviceCommand, statusCommand, alertsCommand, runSchedulerCommand, ...REPO_COMMANDS, settingsCommand];
