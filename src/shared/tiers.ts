/**
 * Protection tiers as operators name them, and how a device's RPO follows from them.
 *
 * A device's effective RPO is, in this order: its own `rpoMinutes`; else the RPO of the tier its
 * tags name (`tier:critical`, `tier:important`, `tier:standard`, or the bare words); else the
 * console-wide `defaultRpoMinutes`. The tier shown is the tagged one, or else the tier whose RPO
 * band holds the effective RPO (≤ 15 min critical, ≤ 1 h important, otherwise standard).
 */
export const TIERS = ['critical', 'important', 'standard'] as const;
export type Tier = (typeof TIERS)[number];

export const TIER_RPO_MINUTES: Record<Tier, number> = { critical: 15, important: 60, standard: 24 * 60 };

export function tierFromTags(tags: readonly string[]): Tier | null {
  for (const tier of TIERS) {
    if (tags.some((t) => t.toLowerCase() === tier || t.toLowerCase() === `tier:${tier}`)) return tier;
  }
  return null;
}

export function tierOfRpo(rpoMinutes: number): Tier {
  return rpoMinutes <= TIER_RPO_MINUTES.critical ? 'critical' : rpoMinutes <= TIER_RPO_MINUTES.important ? 'important' : 'standard';
}

export interface EffectiveRpo {
  rpoMinutes: number;
  tier: Tier;
  /** Where the RPO comes from. */
  from: 'device' | 'tier' | 'default';
}

export function effectiveRpo(device: { rpoMinutes?: number | null; tags: readonly string[] }, defaultRpoMinutes: number): EffectiveRpo {
  const tagged = tierFromTags(device.tags);
  if (device.rpoMinutes) return { rpoMinutes: device.rpoMinutes, tier: tagged ?? tierOfRpo(device.rpoMinutes), from: 'device' };
  if (tagged) return { rpoMinutes: TIER_RPO_MINUTES[tagged], tier: tagged, from: 'tier' };
  return { rpoMinutes: defaultRpoMinutes, tier: tierOfRpo(defaultRpoMinutes), from: 'default' };
}
