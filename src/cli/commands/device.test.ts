import { describe, expect, it } from 'vitest';
import { diskLine } from './device';

describe('device facts, as text', () => {
  it('gives each disk its room in the unit that fits it', () => {
    expect(diskLine({ mount: '/', availableBytes: 75_566_989_312, sizeBytes: 270_553_174_016 })).toBe(`/${' '.repeat(23)} 70.4 GiB free of 252 GiB`);
    // A small mount read "0.0 GiB free of 0.0 GiB".
    expect(diskLine({ mount: '/boot/efi', availableBytes: 4096, sizeBytes: 4096 })).toBe(`/boot/efi${' '.repeat(15)} 4.0 KiB free of 4.0 KiB`);
    expect(diskLine({ mount: '/media/nvme-data-volume-01', availableBytes: 0, sizeBytes: 512 * 2 ** 30 })).toBe('/media/nvme-data-volume-01 0 B free of 512 GiB');
  });
});
