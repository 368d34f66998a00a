import { describe, expect, it } from 'vitest';
import { counted, verb } from './plural';

describe('counted', () => {
  it('says one thing in the singular and any other count in the plural', () => {
    expect(counted(1, 'device')).toBe('1 device');
    expect(counted(0, 'device')).toBe('0 devices');
    expect(counted(3, 'file or folder', 'files or folders')).toBe('3 files or folders');
    expect(`${counted(1, 'job')} ${verb(1, 'was', 'were')} interrupted`).toBe('1 job was interrupted');
    expect(`${counted(2, 'job')} ${verb(2, 'was', 'were')} interrupted`).toBe('2 jobs were interrupted');
  });
});
