// How the console writes times, counts and rates.

/** A moment as the reader's locale writes it; "never" for none. */
export function when(iso: string | null | undefined, never = "never"): string {
  return iso ? new Date(iso).toLocaleString() : never;
}

/** A day as the reader's locale writes it. */
export function day(iso: string | null | undefined, never = "never"): string {
  return iso ? new Date(iso).toLocaleDateString() : never;
}

/** How long ago: "12 s ago", "5 min ago", "3 h ago", then the date; `now` for tests. */
export function ago(iso: string | null | undefined, now: number = Date.now(), never = "never"): string {
  if (!iso) return never;
  const seconds = Math.max(0, Math.round((now - new Date(iso).getTime()) / 1000));
  if (seconds < 60) return `${seconds} s ago`;
  if (seconds < 3600) return `${Math.floor(seconds / 60)} min ago`;
  if (seconds < 86400) return `${Math.floor(seconds / 3600)} h ago`;
  return new Date(iso).toLocaleDateString();
}

/** How long until: "in 59 min", "in 23 h", "in 6 days". */
export function until(iso: string, now: number = Date.now()): string {
  const seconds = Math.max(0, Math.round((new Date(iso).getTime() - now) / 1000));
  if (seconds < 60) return `in ${seconds} s`;
  if (seconds < 3600) return `in ${Math.ceil(seconds / 60)} min`;
  if (seconds < 86400 * 2) return `in ${Math.round(seconds / 3600)} h`;
  return `in ${Math.round(seconds / 86400)} days`;
}

export function count(n: number): string {
  return n.toLocaleString("en");
}

/** A percentage to two decimals; what is more than none but rounds to 0 says so. */
export function percent(value: number | null | undefined): string {
  if (value === null || value === undefined) return "–";
  if (value > 0 && value < 0.005) return "< 0.01%";
  return `${value.toLocaleString("en", { maximumFractionDigits: 2 })}%`;
}

/** The local midnight starting `date` ("2026-12-03", as a date input holds it), as an ISO instant;
 * `days` later with `days`. */
export function startOfDay(date: string, days = 0): string {
  const [y, m, d] = date.split("-").map(Number);
  return new Date(y, m - 1, d + days).toISOString();
}
