import type { Database } from 'better-sqlite3';
import { openHistoryDatabase } from './database';
import { prepareStatements } from './statements';
import type { Statements } from './statements';

/** The opened history database and its named statements; owned by the services container. */
export class HistoryStore {
  readonly db: Database;
  readonly sql: Statements;
  readonly schemaVersion: number;

  constructor(dataDir: string) {
    this.db = openHistoryDatabase(dataDir);
    this.sql = prepareStatements(this.db);
    this.schemaVersion = (this.db.prepare('SELECT max(id) AS v FROM schema_migrations').get() as { v: number }).v;
  }

  audit(actor: string, action: string, target: string | null, detail?: Record<string, unknown>): void {
    this.sql.auditInsert.run(new Date().toISOString(), actor, action, target, detail ? JSON.stringify(detail) : null);
  }

  close(): void {
    if (this.db.open) this.db.close();
  }
}
