import type { TextFile } from '../../shared/schemas/fleet';

/**
 * Saves text made in main as a file the way a page does: a Blob behind a download link (the
 * desktop app asks where to save it; a browser puts it in its downloads). No Node in the renderer.
 */
export function saveTextFile(file: TextFile): void {
  const url = URL.createObjectURL(new Blob([file.text], { type: `${file.mimeType};charset=utf-8` }));
  const link = document.createElement('a');
  link.href = url;
  link.download = file.filename;
  link.rel = 'noopener';
  document.body.append(link);
  link.click();
  link.remove();
  // Give the download a moment to start before the URL goes away.
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}
