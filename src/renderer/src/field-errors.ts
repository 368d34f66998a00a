/**
 * A refused save's reasons by field, for a react-aria `Form`'s `validationErrors`. While a field
 * has one, the browser will not send the form again (react-aria makes it the input's own validity
 * message), so a field's reason goes as soon as the field is edited.
 */
import { useCallback, useMemo, useState } from 'react';
import type { AppError } from '../../shared/errors';
import { placeIssues } from '../../shared/refusal';
import type { Refusal } from '../../shared/refusal';

export type FieldErrors = Record<string, string>;

/** `fields`: the names of the form's fields that show a reason (a `FieldError` inside); a constant of the form's module. */
export function useFieldErrors(fields: readonly string[]): {
  errors: FieldErrors;
  /**
   * Marks the fields a refused save's reasons are about (`placeIssues`; `prefix` e.g. `sources.2.`).
   * Returns how many fields it marked and the reasons no field of the form shows, for the banner
   * (`refusalText`); nothing marked for errors without issues.
   */
  refused: (error: AppError, prefix?: string) => Refusal;
  set: (errors: FieldErrors) => void;
  /** Drops one field's reason: call on every edit of that field. */
  edited: (field: string) => void;
  /** A field's setter that also drops its reason (for fields kept in their own state). */
  editing: <T>(field: string, set: (value: T) => void) => (value: T) => void;
} {
  const [errors, setErrors] = useState<FieldErrors>({});
  // Each form passes a module constant, so the set is made once per form.
  const shown = useMemo(() => new Set(fields), [fields]);
  const refused = useCallback(
    (error: AppError, prefix = '') => {
      const { marked, refusal } = placeIssues(error.issues ?? [], shown, prefix);
      setErrors(marked);
      return refusal;
    },
    [shown],
  );
  const edited = useCallback((field: string) => setErrors((all) => (field in all ? Object.fromEntries(Object.entries(all).filter(([key]) => key !== field)) : all)), []);
  const editing =
    <T,>(field: string, set: (value: T) => void) =>
    (value: T) => {
      set(value);
      edited(field);
    };
  return { errors, refused, set: setErrors, edited, editing };
}
