import { EmptyState } from '../components/EmptyState';
import { PageHeader } from '../components/PageHeader';

export function RestorePage() {
  return (
    <>
      <PageHeader title="Restore" subtitle="Guided, verified restores to a device or this laptop" />
      <EmptyState title="Nothing to restore yet" testId="restore-empty">
        <p>
          A restore starts from a snapshot. Once a device has been backed up, pick it here with a point in time; the wizard
          shows exactly what will change before it changes anything.
        </p>
      </EmptyState>
    </>
  );
}
