import { useCallback, useEffect, useState } from 'react';

/** How long a first press of a destructive button waits for the second. */
export const SECOND_PRESS_MS = 5000;

/**
 * A two-step confirm (Remove, then "Press again…"): `armed` is what the first press armed (a device,
 * a source's name, a repository's id) until the second press, SECOND_PRESS_MS later, or focus
 * leaving the button (`disarm` on blur) — a second press must follow the first, not come minutes on.
 */
export function useSecondPress<T>(): { armed: T | null; arm: (what: T) => void; disarm: () => void } {
  const [armed, setArmed] = useState<T | null>(null);
  useEffect(() => {
    if (armed === null) return;
    const timer = setTimeout(() => setArmed(null), SECOND_PRESS_MS);
    return () => clearTimeout(timer);
  }, [armed]);
  const disarm = useCallback(() => setArmed(null), []);
  return { armed, arm: setArmed, disarm };
}
