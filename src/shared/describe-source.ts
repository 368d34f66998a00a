/**
 * A source in words, as the device page lists it and the device report prints it: what it takes from
 * the device (paths with their include and exclude patterns, a database and where it is reached), its
 * own schedule, and whether a database password is stored for it.
 */
import type { Source } from './schemas/devices';

export function describeSource(source: Source, passwordStored: boolean): string {
  const own = source.schedule ? ` · also on its own at ${source.schedule}` : '';
  const login = source.kind === 'postgres' || source.kind === 'mysql' ? `${source.user ? ` as ${source.user}` : ''}${passwordStored ? ' · password stored' : ''}` : '';
  switch (source.kind) {
    case 'postgres':
      return `PostgreSQL database ${source.database}${source.host ? ` at ${source.host}` : ''}${source.port ? `:${source.port}` : ''}${login}${own}`;
    case 'mysql':
      return `MySQL database ${source.database}${source.host ? ` at ${source.host}` : source.socket ? ` at ${source.socket}` : ''}${login}${own}`;
    case 'sqlite':
      return `SQLite ${source.path}${own}`;
    case 'files':
      return [
        source.paths.join(', '),
        source.include?.length ? ` (only ${source.include.join(', ')})` : '',
        source.exclude?.length ? ` (except ${source.exclude.join(', ')})` : '',
        source.rotateAfterBackup ? ' · rotated after each backup' : '',
        own,
      ].join('');
  }
}
