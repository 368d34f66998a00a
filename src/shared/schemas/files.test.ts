import { describe, expect, it } from 'vitest';
import { DownloadRequestSchema, LocalFolderSchema } from './files';

describe('a folder on this computer to download into', () => {
  it('is an absolute folder as the laptop writes it: POSIX, a Windows drive or a Windows share', () => {
    // What the native folder picker hands back on each platform the app is built for.
    for (const folder of ['/home/tech/Downloads', '/Users/tech/Downloads', 'C:\\Users\\tech\\Downloads', 'D:/exports', '\\\\depot-nas\\backups\\rvm']) {
      expect(LocalFolderSchema.safeParse(folder).success, folder).toBe(true);
    }
    const request = { snapshotId: 'a'.repeat(64), folder: 'C:\\Users\\tech\\Downloads' };
    expect(DownloadRequestSchema.safeParse(request).success).toBe(true);
  });

  it('is refused when relative or holding a NUL', () => {
    for (const folder of ['Downloads', '.\\Downloads', 'C:Downloads', '', '/tmp/a\0b']) {
      expect(LocalFolderSchema.safeParse(folder).success, JSON.stringify(folder)).toBe(false);
    }
  });
});
