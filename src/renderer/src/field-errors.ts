/**
 * A refused save's reasons by field, for a react-aria `Form`'s `validationErrors`. While a field
 * has one, the browser will not send the form again (react-aria makes it the input's own validity
 * message), so a field's reason goes as soon as the field is edited.
 */
import { useCallback, useState } from 'react';
import type { AppError } from '../../shared/errors';

export type FieldErrors = Record<string, string>;

export function useFieldErrors(): {
  errors: FieldErrors;
  /**
   * The reasons of a refused save by field name: an issue's path less `prefix` (e.g. `sources.2.`)
   * and less list positions (`paths.0` is the paths field's, `services.stop.1` the services.stop
   * field's). Nothing for errors without issues.
   */
  refused: (error: AppError, prefix?: string) => void;
  set: (errors: FieldErrors) => void;
  /** Drops one field's reason: call on every edit of that field. */
  edited: (field: string) => void;
  /** A field's setter that also drops its reason (for fields kept in their own state). */
  editing: <T>(field: string, set: (value: T) => void) => (value: T) => void;
} {
  const [errors, setErrors] = useState<FieldErrors>({});
  const refused = useCallback((error: AppError, prefix = '') => {
    const ours = (error.issues ?? []).filter((i) => i.path.startsWith(prefix));
    setErrors(Object.fromEntries(ours.map((i) => [i.path.slice(prefix.length).replace(/(\.\d+)+$/, ''), i.message])));
  }, []);
  const edited = useCallback((field: string) => setErrors((all) => (field in all ? Object.fromEntries(Object.entries(all).filter(([key]) => key !== field)) : all)), []);
  const editing =
    <T,>(field: string, set: (value: T) => void) =>
    (value: T) => {
      set(value);
      edited(field);
    };
  return { errors, refused, set: setErrors, edited, editing };
}
