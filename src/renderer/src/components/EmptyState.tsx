import type { ReactNode } from 'react';

/** What a page shows when it has nothing yet: what this place is for, and what the first step is. */
export function EmptyState({ title, children, testId }: { title: string; children: ReactNode; testId: string }) {
  return (
    <section className="empty-state" data-testid={testId} aria-label={title}>
      <h2>{title}</h2>
      <div className="empty-state-body">{children}</div>
    </section>
  );
}
