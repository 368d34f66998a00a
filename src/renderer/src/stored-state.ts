/**
 * useState that survives the window being closed: the value is kept in the renderer's
 * localStorage under `jetvault.<key>` (choices only — never secrets or anything a destructive step
 * asks to be typed again). A stored value that no longer parses falls back to `initial`.
 */
import { useEffect, useState } from 'react';
import type { Dispatch, SetStateAction } from 'react';

/** What a stored value may be, by the shape of its initial value (strings, string lists, or null/string). */
function fits(value: unknown, initial: unknown): boolean {
  if (Array.isArray(initial)) return Array.isArray(value) && value.every((v) => typeof v === 'string');
  if (initial === null) return value === null || typeof value === 'string';
  return typeof value === typeof initial;
}

function read<T>(key: string, initial: T, valid: (value: T) => boolean): T {
  try {
    const text = window.localStorage.getItem(`jetvault.${key}`);
    if (text === null) return initial;
    const value = JSON.parse(text) as unknown;
    return fits(value, initial) && valid(value as T) ? (value as T) : initial;
  } catch {
    return initial;
  }
}

export function useStoredState<T>(key: string, initial: T, valid: (value: T) => boolean = () => true): [T, Dispatch<SetStateAction<T>>] {
  const [value, setValue] = useState<T>(() => read(key, initial, valid));
  useEffect(() => {
    try {
      window.localStorage.setItem(`jetvault.${key}`, JSON.stringify(value));
    } catch {
      // Storage full or disabled: the wizard still works, it only forgets on close.
    }
  }, [key, value]);
  return [value, setValue];
}
