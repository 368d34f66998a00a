import { useEffect } from 'react';
import type { ReactElement } from 'react';
import { JobsTray } from './components/JobsTray';
import { PageErrorBoundary } from './components/PageErrorBoundary';
import { AlertsPage } from './pages/AlertsPage';
import { AuditPage } from './pages/AuditPage';
import { CatalogPage } from './pages/CatalogPage';
import { DashboardsPage } from './pages/DashboardsPage';
import { FleetPage } from './pages/FleetPage';
import { RestorePage } from './pages/RestorePage';
import { SettingsPage } from './pages/SettingsPage';
import { PAGES, pageFromHash, routeParam, useAppStore } from './stores/app-store';
import type { PageId } from './stores/app-store';
import { useAlertsStore } from './stores/alerts-store';
import { useSettingsStore } from './stores/settings-store';

const PAGE_COMPONENTS: Record<PageId, () => ReactElement> = {
  fleet: FleetPage,
  catalog: CatalogPage,
  restore: RestorePage,
  dashboards: DashboardsPage,
  alerts: AlertsPage,
  audit: AuditPage,
  settings: SettingsPage,
};

function useHashNavigation(): PageId {
  const page = useAppStore((s) => s.page);
  const navigated = useAppStore((s) => s.navigated);
  useEffect(() => {
    const onHash = () => navigated(pageFromHash(window.location.hash), routeParam(window.location.hash));
    window.addEventListener('hashchange', onHash);
    return () => window.removeEventListener('hashchange', onHash);
  }, [navigated]);
  return page;
}

/** Applies the theme setting; "system" follows the OS and updates when it changes. */
function useTheme(): void {
  const theme = useSettingsStore((s) => s.settings?.theme ?? 'system');
  useEffect(() => {
    const media = window.matchMedia('(prefers-color-scheme: dark)');
    const apply = () => {
      document.documentElement.dataset.theme = theme === 'system' ? (media.matches ? 'dark' : 'light') : theme;
    };
    apply();
    media.addEventListener('change', apply);
    return () => media.removeEventListener('change', apply);
  }, [theme]);
}

export function App() {
  const page = useHashNavigation();
  const param = useAppStore((s) => s.param);
  const info = useAppStore((s) => s.info);
  const openAlerts = useAlertsStore((s) => s.open.length);
  const loadAlerts = useAlertsStore((s) => s.load);
  useEffect(() => {
    void loadAlerts().catch(() => undefined);
  }, [loadAlerts]);
  useTheme();
  const Page = PAGE_COMPONENTS[page];
  return (
    <div className="frame">
      <nav className="sidebar" aria-label="Main">
        <div className="brand">
          <span className="brand-mark" aria-hidden="true">
            ◆
          </span>
          Jetvault
        </div>
        <ul>
          {PAGES.map((p) => (
            <li key={p.id}>
              <a href={`#/${p.id}`} aria-current={p.id === page ? 'page' : undefined} data-testid={`nav-${p.id}`}>
                {p.label}
                {p.id === 'alerts' && openAlerts > 0 ? (
                  <span className="nav-badge" data-testid="nav-alerts-count" aria-label={`${openAlerts} open`}>
                    {openAlerts}
                  </span>
                ) : null}
              </a>
            </li>
          ))}
        </ul>
        <div className="sidebar-footer" data-testid="app-version">
          {info ? `v${info.version} · ${info.transport === 'websocket' ? 'test host' : 'desktop'}` : ''}
        </div>
      </nav>
      <main className="content" data-testid={`page-${page}`} tabIndex={-1}>
        {/* One page's render exception stays on that page; another page starts a fresh boundary, another device or snapshot clears the error. */}
        <PageErrorBoundary key={page} resetKey={param ?? ''} page={PAGES.find((p) => p.id === page)!.label}>
          <Page />
        </PageErrorBoundary>
      </main>
      <JobsTray />
    </div>
  );
}
