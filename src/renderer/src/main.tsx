import { StrictMode } from 'react';
import { createRoot } from 'react-dom/client';
import { App } from './App';
import { initApi } from './api';
import { subscribeToMainEvents } from './ipc-events';
import { useAppStore } from './stores/app-store';
import { useFleetStore } from './stores/fleet-store';
import { useJobsStore } from './stores/jobs-store';
import { useSettingsStore } from './stores/settings-store';
import './styles.css';

async function start(): Promise<void> {
  const root = document.getElementById('root')!;
  try {
    const api = await initApi();
    subscribeToMainEvents(api);
    await Promise.all([
      useAppStore.getState().loadInfo(),
      useSettingsStore.getState().load(),
      useJobsStore.getState().load(),
      useFleetStore.getState().load(),
    ]);
  } catch (error) {
    root.textContent = '';
    const message = document.createElement('p');
    message.className = 'fatal';
    message.setAttribute('role', 'alert');
    message.textContent = `Jetvault could not reach its backend: ${(error as Error).message}`;
    // A backend still starting, or one another process held up for a moment, answers a second try:
    // the page loads afresh (nothing of the failed start is kept).
    const retry = document.createElement('button');
    retry.type = 'button';
    retry.className = 'button';
    retry.textContent = 'Try again';
    retry.dataset.testid = 'boot-retry';
    retry.addEventListener('click', () => window.location.reload());
    root.append(message, retry);
    document.documentElement.dataset.ready = 'error';
    return;
  }
  createRoot(root).render(
    <StrictMode>
      <App />
    </StrictMode>,
  );
  // End-to-end tests wait on this attribute rather than on timing.
  requestAnimationFrame(() => {
    document.documentElement.dataset.ready = 'true';
  });
}

void start();
