import { useState } from 'react';
import type { ReactNode } from 'react';

/**
 * Renders only the rows in view (plus a margin), so a directory of 100k entries scrolls as fast as
 * one of ten. Rows have a fixed height.
 */
export function VirtualList<T>({ items, rowHeight, height, render, label, testId }: {
  items: readonly T[];
  rowHeight: number;
  height: number;
  render: (item: T, index: number) => ReactNode;
  label: string;
  testId?: string;
}) {
  const [scrollTop, setScrollTop] = useState(0);
  const overscan = 10;
  const first = Math.max(0, Math.floor(scrollTop / rowHeight) - overscan);
  const last = Math.min(items.length, Math.ceil((scrollTop + height) / rowHeight) + overscan);
  return (
    <div className="virtual-list" style={{ height }} onScroll={(e) => setScrollTop(e.currentTarget.scrollTop)} role="list" aria-label={label} data-testid={testId} data-count={items.length}>
      <div style={{ height: items.length * rowHeight, position: 'relative' }}>
        {items.slice(first, last).map((item, i) => (
          // Only the rows in view are in the page: each says where it stands in the whole list ("5 of 100,000").
          <div key={first + i} role="listitem" aria-setsize={items.length} aria-posinset={first + i + 1} className="virtual-row" style={{ position: 'absolute', top: (first + i) * rowHeight, height: rowHeight, left: 0, right: 0 }}>
            {render(item, first + i)}
          </div>
        ))}
      </div>
    </div>
  );
}
