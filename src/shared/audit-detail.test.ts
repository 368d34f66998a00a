import { describe, expect, it } from 'vitest';
import { describeAuditDetail } from './audit-detail';

describe('describeAuditDetail', () => {
  it('says a change as before → after, lists as their items, nested fields by their path', () => {
    expect(describeAuditDetail(JSON.stringify({ site: { from: 'porto-yard', to: 'Depot, "North"' }, rpoMinutes: { from: null, to: 60 } }))).toBe('site: porto-yard → Depot, "North"; rpoMinutes: none → 60');
    expect(describeAuditDetail(JSON.stringify({ sources: { added: ['logs'], edited: ['db', 'app'] }, secrets: ['password set'] }))).toBe('sources.added: logs; sources.edited: db, app; secrets: password set');
    expect(describeAuditDetail(JSON.stringify({ job: 'j1', title: 'Back up rvm-017', tags: [], ok: true }))).toBe('job: j1; title: Back up rvm-017; tags: none; ok: true');
    expect(describeAuditDetail(JSON.stringify({ services: { from: { stop: ['a'] }, to: null } }))).toBe('services: {"stop":["a"]} → none');
  });

  it('leaves what is not a JSON object as it is, and nothing as nothing', () => {
    expect(describeAuditDetail(null)).toBe('');
    expect(describeAuditDetail('not json')).toBe('not json');
    expect(describeAuditDetail('[1,2]')).toBe('[1,2]');
    expect(describeAuditDetail('{}')).toBe('');
  });
});
