/**
 * A share to a tenth of a per cent, never rounded to 100 % or 0 % unless it is exactly that: one
 * device of 500 out of its RPO is 99.8 %, not "100 %" (the dashboards' tooltips, the device report).
 */
export function formatShare(f: number): string {
  return f >= 1 || f <= 0 ? `${Math.round(f * 100)} %` : `${Math.min(99.9, Math.max(0.1, Math.round(f * 1000) / 10))} %`;
}
