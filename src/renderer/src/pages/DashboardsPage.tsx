import { EmptyState } from '../components/EmptyState';
import { PageHeader } from '../components/PageHeader';
import { formatBytes } from '../format';
import { useJobsStore } from '../stores/jobs-store';

export function DashboardsPage() {
  const recent = useJobsStore((s) => s.recent);
  return (
    <>
      <PageHeader title="Dashboards" subtitle="RPO and RTO over time, backup sizes and durations, storage" />
      {recent.length === 0 ? (
        <EmptyState title="No history to chart yet" testId="dashboards-empty">
          <p>Charts fill in as backups, restores and drills run: durations, sizes, dedup, RPO compliance and measured RTO.</p>
        </EmptyState>
      ) : (
        <section aria-label="Recent jobs" className="card" data-testid="recent-jobs">
          <h2>Recent jobs</h2>
          <table className="table">
            <thead>
              <tr>
                <th scope="col">Job</th>
                <th scope="col">Kind</th>
                <th scope="col">Status</th>
                <th scope="col">Started</th>
                <th scope="col">Data</th>
              </tr>
            </thead>
            <tbody>
              {recent.map((job) => (
                <tr key={job.id}>
                  <td>{job.title}</td>
                  <td>{job.kind}</td>
                  <td className={`status status-${job.status}`}>{job.status}</td>
                  <td>{new Date(job.startedAt).toLocaleString()}</td>
                  <td>{formatBytes(job.bytesDone)}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </section>
      )}
    </>
  );
}
