import type { Command } from '../command';
import { settingsCommand } from './settings';

/** Every `jetvault` subcommand, in the order `--help` lists them. Add new commands here. */
export const COMMANDS: readonly Command[] = [settingsCommand];
