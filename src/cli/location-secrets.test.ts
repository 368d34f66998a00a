/**
 * A repository location with credentials in it (`s3:https://KEY:SECRET@host/bucket`, as some S3 tools
 * take them, or `sftp:user:password@host:/path`) is refused without repeating them: a location is
 * printed in every message about the repository and stored in plain text by the console.
 */
import { describe, expect, it } from 'vitest';
import { RepositoryLocationSchema } from '../shared/schemas/repositories';
import { tempDir } from '../main/testing/temp-dir';
import { cliRunner } from './testing';

const SECRET = 'wJalrXUtnFEMI-K7MDENG-bPxRfiCYEXAMPLEKEY';
const LOCATIONS = [`s3:http://AKIAIOSFODNN7EXAMPLE:${SECRET}@127.0.0.1:1/jetvault`, `s3:AKIAIOSFODNN7EXAMPLE:${SECRET}@127.0.0.1:1/jetvault`, `sftp:backup:${SECRET}@127.0.0.1:1:/srv/jetvault`];

describe('a repository location holding credentials', () => {
  it('is refused by init and every other command at once, and the secret is not repeated', async () => {
    const run = cliRunner({ JETVAULT_HOME: tempDir(), JETVAULT_PASSWORD: 'repository password', AWS_ACCESS_KEY_ID: 'AKIAIOSFODNN7EXAMPLE', AWS_SECRET_ACCESS_KEY: SECRET });
    for (const location of LOCATIONS) {
      for (const command of ['init', 'snapshots']) {
        const started = Date.now();
        const result = await run(command, '-r', location);
        expect(result.code, `${command} ${location}`).not.toBe(0);
        expect(result.err).toMatch(/cannot hold (credentials|a password)/);
        expect(`${result.out}\n${result.err}`).not.toContain(SECRET);
        // Refused, not retried against the server for seconds.
        expect(Date.now() - started).toBeLessThan(2_000);
      }
    }
  });

  it("is refused by the console's repository form, without repeating the secret", () => {
    for (const location of LOCATIONS) {
      const parsed = RepositoryLocationSchema.safeParse(location);
      expect(parsed.success).toBe(false);
      const messages = parsed.error!.issues.map((issue) => issue.message).join('\n');
      expect(messages).toMatch(/cannot hold (credentials|a password)/);
      expect(messages).not.toContain(SECRET);
    }
  });
});
