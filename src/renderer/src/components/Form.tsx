/**
 * react-aria's `Form`, with a field's "missing" or "invalid" message going as soon as the typed
 * value is valid instead of when the field loses focus. react-aria shows a field's new validity
 * on the input's native `change` event, which a text input fires only on blur; the blur that a
 * press on Save or "Check host key" causes then removed the message under the pointer, the button
 * moved up, and the press landed beside it (adobe/react-spectrum#6983). Each input event is
 * followed by a `change` event on the same input: React does not call `onChange` again for it (its
 * value did not change since), and react-aria shows the field's current validity.
 */
import { useEffect, useRef } from 'react';
import { Form as AriaForm } from 'react-aria-components';
import type { FormProps } from 'react-aria-components';

export function Form(props: FormProps) {
  const ref = useRef<HTMLFormElement>(null);
  useEffect(() => {
    // On the document, so React (listening on its root, further down) has taken the typed value
    // first: a `change` before that would be read as the edit itself, and the edit lost.
    const revalidate = (event: Event) => {
      const input = event.target;
      if ((input instanceof HTMLInputElement || input instanceof HTMLTextAreaElement) && ref.current?.contains(input)) input.dispatchEvent(new Event('change'));
    };
    document.addEventListener('input', revalidate);
    return () => document.removeEventListener('input', revalidate);
  }, []);
  return <AriaForm {...props} ref={ref} />;
}
