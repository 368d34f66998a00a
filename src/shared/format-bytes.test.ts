import { describe, expect, it } from 'vitest';
import { formatBytes as cliBytes } from '../cli/commands/repo-common';
import { formatBytes } from './format-bytes';

describe('formatBytes', () => {
  it('shows three significant digits, and never 1024 of a unit', () => {
    expect([0, 1023, 1024, 1536, 150_000, 1_048_000, 1_048_570, 1_048_576, 5 * 1024 ** 3].map(formatBytes)).toEqual(['0 B', '1023 B', '1.0 KiB', '1.5 KiB', '146 KiB', '1023 KiB', '1.0 MiB', '1.0 MiB', '5.0 GiB']);
    // The CLI's, with one decimal throughout.
    expect([1023, 1_048_000, 1_048_570, 1024 ** 3 - 10].map(cliBytes)).toEqual(['1023 B', '1023.4 KiB', '1.0 MiB', '1.0 GiB']);
  });
});
