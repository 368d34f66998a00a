import { EmptyState } from '../components/EmptyState';
import { PageHeader } from '../components/PageHeader';

export function CatalogPage() {
  return (
    <>
      <PageHeader title="Catalog" subtitle="Snapshots in the repository, by device and source" />
      <EmptyState title="No snapshots yet" testId="catalog-empty">
        <p>Snapshots appear here after a device&apos;s first backup. From a snapshot you can browse its files and databases.</p>
      </EmptyState>
    </>
  );
}
