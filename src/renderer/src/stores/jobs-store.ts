import { create } from 'zustand';
import type { JobProgress, JobRecord } from '../../../shared/schemas/jobs';
import { api } from '../api';

interface JobsState {
  /** Running jobs by id, as last pushed by main. */
  active: Record<string, JobProgress>;
  recent: JobRecord[];
  load: () => Promise<void>;
  cancel: (jobId: string) => Promise<boolean>;
  progressed: (progress: JobProgress) => void;
  finished: (job: JobRecord) => void;
}

const RECENT_LIMIT = 50;

export const useJobsStore = create<JobsState>()((set) => ({
  active: {},
  recent: [],
  async load() {
    const [active, recent] = await Promise.all([api().jobs.active(), api().jobs.list({ limit: RECENT_LIMIT })]);
    set({ active: Object.fromEntries(active.map((p) => [p.jobId, p])), recent });
  },
  async cancel(jobId) {
    return (await api().jobs.cancel({ jobId })).cancelled;
  },
  progressed: (progress) => set((state) => ({ active: { ...state.active, [progress.jobId]: progress } })),
  finished: (job) =>
    set((state) => {
      const { [job.id]: _done, ...active } = state.active;
      return { active, recent: [job, ...state.recent.filter((j) => j.id !== job.id)].slice(0, RECENT_LIMIT) };
    }),
}));

export const selectActiveJobs = (state: JobsState): JobProgress[] => Object.values(state.active);
