import { EmptyState } from '../components/EmptyState';
import { PageHeader } from '../components/PageHeader';

export function AlertsPage() {
  return (
    <>
      <PageHeader title="Alerts" subtitle="Failed backups, breached RPOs, low storage, overdue drills" />
      <EmptyState title="No alerts" testId="alerts-empty">
        <p>No monitoring rules have fired. With no devices in the inventory there is nothing to watch yet.</p>
      </EmptyState>
    </>
  );
}
