import { describe, expect, it } from 'vitest';
import { newestRunKey } from './job-runs';
import type { JobKind, JobRecord } from './schemas/jobs';

type Job = Pick<JobRecord, 'id' | 'kind' | 'status'>;
const job = (n: number, kind: JobKind = 'backup', status: JobRecord['status'] = 'succeeded'): Job => ({ id: `job_${String(n).padStart(6, '0')}`, kind, status });

describe('newestRunKey', () => {
  it('changes when a run ends even though the full list keeps the same number of them', () => {
    // The jobs store keeps the newest 50, newest first: one more run pushes the oldest out.
    const full = Array.from({ length: 50 }, (_, i) => job(50 - i));
    const after = [job(51), ...full].slice(0, 50);
    expect(after.filter((j) => j.kind === 'backup')).toHaveLength(50);
    expect(newestRunKey(after, ['backup'])).not.toBe(newestRunKey(full, ['backup']));
  });

  it('names the newest run of the kinds asked for, with its status', () => {
    const jobs = [job(4, 'verify'), job(3, 'copy', 'failed'), job(2, 'backup', 'cancelled'), job(1)];
    expect(newestRunKey(jobs, ['backup'])).toBe('job_000002:cancelled');
    expect(newestRunKey(jobs, ['backup', 'copy'])).toBe('job_000003:failed');
    expect(newestRunKey(jobs, ['restore'])).toBe('');
    expect(newestRunKey([], ['backup'])).toBe('');
  });
});
