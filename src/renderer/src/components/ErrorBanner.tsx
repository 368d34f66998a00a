/** An error said where it happened, announced to screen readers; renders nothing without one. */
export function ErrorBanner({ message, testId }: { message: string | null; testId?: string }) {
  if (!message) return null;
  return (
    <p role="alert" className="banner banner-error" data-testid={testId}>
      {message}
    </p>
  );
}
