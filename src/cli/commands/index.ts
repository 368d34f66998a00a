import type { Command } from '../command';
import { deviceCommand } from './device';
import { settingsCommand } from './settings';
import { REPO_COMMANDS } from './repo-commands';

/** Every `jetvault` subcommand, in the order `--help` lists them. Add new commands here. */
export const COMMANDS: readonly Command[] = [deviceCommand, ...REPO_COMMANDS, settingsCommand];
