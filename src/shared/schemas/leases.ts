import { z } from './zod';

/** A lease in the repository (`locks/<id>`): who holds it, since when, and whether it is stale. */
export const LeaseSchema = z.object({
  id: z.string(),
  host: z.string(),
  pid: z.number().int(),
  exclusive: z.boolean(),
  created: z.string(),
  refreshed: z.string(),
  stale: z.boolean(),
});
export type Lease = z.infer<typeof LeaseSchema>;

/** A lease id as the repository names them: 32 hex (shared, or exclusive without create-only writes) or exclusive-<n>. */
export const LeaseIdSchema = z.string().regex(/^(?:[0-9a-f]{32}|exclusive-\d{10})$/, 'Not a lease id');

export const BreakLeaseSchema = z.object({ id: LeaseIdSchema, force: z.boolean().optional() }).strict();
