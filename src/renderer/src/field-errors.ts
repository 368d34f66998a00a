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
   * The reasons of a refused save by field: an issue's path less `prefix` (e.g. `sources.2.`), up to
   * the first dot (`jump.host` is the jump field's, `paths.0` the paths field's). None for other errors.
   */
  refused: (error: AppError, prefix?: string) => void;
  set: (errors: FieldErrors) => void;
  /** Drops one field's reason: call on every edit of that field. */
  edited: (field: string) => void;
} {
  const [errors, setErrors] = useState<FieldErrors>({});
  const refused = useCallback((error: AppError, prefix = '') => {
    const ours = (error.issues ?? []).filter((i) => i.path.startsWith(prefix));
    setErrors(Object.fromEntries(ours.map((i) => [i.path.slice(prefix.length).split('.')[0]!, i.message])));
  }, []);
  const edited = useCallback((field: string) => setErrors((all) => (field in all ? Object.fromEntries(Object.entries(all).filter(([key]) => key !== field)) : all)), []);
  return { errors, refused, set: setErrors, edited };
}
