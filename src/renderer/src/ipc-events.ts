/**
 * The one place where events pushed by the main process enter the renderer's stores.
 * Called once at start-up, before the first render; returns the function that unsubscribes all.
 */
import type { Api } from '../../shared/api';
import { useAlertsStore } from './stores/alerts-store';
import { useCatalogStore } from './stores/catalog-store';
import { useFleetStore } from './stores/fleet-store';
import { useJobsStore } from './stores/jobs-store';
import { useOverviewStore } from './stores/overview-store';
import { useSettingsStore } from './stores/settings-store';

export function subscribeToMainEvents(api: Api): () => void {
  const unsubscribers = [
    api.jobs.onProgress((progress) => useJobsStore.getState().progressed(progress)),
    api.jobs.onFinished(({ job }) => {
      useJobsStore.getState().finished(job);
      // Any finished job can change a device's protection, reachability, verification or RTO; a copy
      // (the copy policy's, with no device of its own) changes how many copies of each device exist.
      if (job.deviceId !== null || job.kind === 'verify' || job.kind === 'copy') void useOverviewStore.getState().load();
      if (job.kind === 'backup') {
        void useFleetStore.getState().load();
        if (job.status === 'succeeded') void useCatalogStore.getState().refresh();
      }
    }),
    api.settings.onChanged((settings) => {
      useSettingsStore.getState().received(settings);
      void useOverviewStore.getState().load();
    }),
    api.devices.onChanged(({ names }) => {
      useFleetStore.getState().changed(names);
      void useOverviewStore.getState().load();
    }),
    api.alerts.onChanged(() => {
      void useAlertsStore.getState().load();
      if (useAlertsStore.getState().recent.length > 0) void useAlertsStore.getState().loadRecent();
      // The overview counts open alerts per device.
      void useOverviewStore.getState().load();
    }),
  ];
  return () => unsubscribers.forEach((unsubscribe) => unsubscribe());
}
