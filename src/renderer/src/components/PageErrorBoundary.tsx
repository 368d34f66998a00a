import { Component } from 'react';
import type { ErrorInfo, ReactNode } from 'react';

interface Props {
  /** The page's name, said in the message ("The Audit log page failed …"). */
  page: string;
  /** The page's part of the route (a device, a snapshot): another one clears a shown error, without remounting the page. */
  resetKey: string;
  children: ReactNode;
}

interface State {
  error: Error | null;
}

/**
 * One page's render exception stays on that page: without this, React unmounts the whole tree and
 * the window goes blank — sidebar, jobs tray and every other page with it. The page says what broke,
 * the sidebar and tray stay, and "Try again" renders the page anew. App keys this boundary by page, so
 * going to another page and back starts it fresh; another device or snapshot on the same page clears
 * the error but keeps the page mounted (a remount would lose what the page keeps per route, e.g. the
 * folder each snapshot was left in). Stores live outside React: nothing loaded or running is lost.
 */
export class PageErrorBoundary extends Component<Props, State> {
  override state: State = { error: null };

  static getDerivedStateFromError(error: unknown): State {
    return { error: error instanceof Error ? error : new Error(String(error)) };
  }

  override componentDidUpdate(previous: Props): void {
    if (previous.resetKey !== this.props.resetKey && this.state.error) this.setState({ error: null });
  }

  override componentDidCatch(error: Error, info: ErrorInfo): void {
    // Kept in the window's console for whoever reports it; the page says the message itself.
    console.error(`The ${this.props.page} page failed to render`, error, info.componentStack);
  }

  override render(): ReactNode {
    const { error } = this.state;
    if (!error) return this.props.children;
    return (
      <section className="card page-error" role="alert" data-testid="page-error">
        <h1>The {this.props.page} page could not be shown</h1>
        <p data-testid="page-error-message">{error.message || error.name}</p>
        <p className="muted">
          Nothing was lost: jobs keep running and the other pages work — pick one on the left. Try again once what the page shows has changed, or report the message above.
        </p>
        <div className="form-actions">
          <button type="button" className="button button-primary" onClick={() => this.setState({ error: null })} data-testid="page-error-retry">
            Try again
          </button>
        </div>
      </section>
    );
  }
}
