/// <reference types="vite/client" />
import type { Api } from '../../shared/api';

declare global {
  interface Window {
    /** Set by the Electron preload; absent when the page is served by the test host. */
    readonly api?: Api;
  }
}
export {};
