import type { Database } from 'better-sqlite3';
import { openHistoryDatabase } from './database';
import { prepareStatements } from './statements';
import type { Statements } from './statements';

export type AuditOutcome = { result: 'ok' } | { result: 'failed' | 'cancelled'; message?: string };

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

  /** Records an operation: who, what, on what, and its result (ok unless said otherwise; a failure carries its message). */
  audit(actor: string, action: string, target: string | null, detail?: Record<string, unknown> | null, outcome: AuditOutcome = { result: 'ok' }): void {
    const message = outcome.result === 'ok' ? null : (outcome.message ?? null);
    this.sql.auditInsert.run(new Date().toISOString(), actor, action, target, detail ? JSON.stringify(detail) : null, outcome.result, message);
  }

  close(): void {
    if (this.db.open) this.db.close();
  }
}
