/**
 * The one place where events pushed by the main process enter the renderer's stores.
 * Called once at start-up, before the first render; returns the function that unsubscribes all.
 */
import type { Api } from '../../shared/api';
import { useAlertsStore } from './stores/alerts-store';
import { useCatalogStore } from './stores/catalog-store';
import { useFleetStore } from './stores/fleet-store';
import { useJobsStore } from './stores/jobs-store';
import { useSettingsStore } from './stores/settings-store';

export function subscribeToMainEvents(api: Api): () => void {
  const unsubscribers = [
    api.jobs.onProgress((progress) => useJobsStore.getState().progressed(progress)),
    api.jobs.onFinished(({ job }) => {
      useJobsStore.getState().finished(job);
      if (job.kind === 'backup') {
        void useFleetStore.getState().load();
        if (job.status === 'succeeded') void useCatalogStore.getState().refresh();
      }
    }),
    api.settings.onChanged((settings) => useSettingsStore.getState().received(settings)),
    api.devices.onChanged(({ names }) => useFleetStore.getState().changed(names)),
    api.alerts.onChanged(() => {
      void useAlertsStore.getState().load();
      if (useAlertsStore.getState().recent.length > 0) void useAlertsStore.getState().loadRecent();
    }),
  ];
  return () => unsubscribers.forEach((unsubscribe) => unsubscribe());
}
