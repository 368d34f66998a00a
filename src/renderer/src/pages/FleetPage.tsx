import { EmptyState } from '../components/EmptyState';
import { PageHeader } from '../components/PageHeader';

export function FleetPage() {
  return (
    <>
      <PageHeader title="Fleet" subtitle="Which devices are protected, which are at risk" />
      <EmptyState title="No devices in the inventory yet" testId="fleet-empty">
        <p>
          Each Jetson you add appears here with its site, reachability, last good backup and how old that backup is against
          the device&apos;s RPO target.
        </p>
        <p>Adding devices over SSH is not part of this build yet; nothing is being backed up.</p>
      </EmptyState>
    </>
  );
}
