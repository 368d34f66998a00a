/**
 * The console's Content Security Policy: only our own scripts, styles and images, no eval, no
 * inline code, no plugins, no framing, no forms posting anywhere. `connect-src 'self'` lets the
 * test host's page reach its own WebSocket (same origin) and nothing else; under Electron the
 * page talks through the preload and needs no network at all.
 */
export const CONTENT_SECURITY_POLICY = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "font-src 'self'",
  "connect-src 'self'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
  "object-src 'none'",
].join('; ');
