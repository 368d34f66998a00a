/** The test fleet: real sshd + PostgreSQL + SQLite stand-ins for Jetson devices. See docs/fleet.md. */
export { startFleet, startDevice } from './fleet';
export type { Fleet, FleetOptions } from './fleet';
export { Device } from './device';
export type { DeviceProfileJson, SourceProfile } from './device';
export { Link, netnsSupport } from './link';
export { DelayProxy } from './proxy';
export { Mutator } from './mutate';
export { cleanupStale } from './registry';
export { mysqlMissing } from './mysql';
export type { MysqlServer } from './mysql';
export { sshExec, connect, execOn } from './ssh';
export type { SshTarget, SshResult, SshOptions } from './ssh';
