/**
 * Request criticality, after Google's criticality classes (SRE book, "Handling Overload"):
 * under overload, sheddable work is refused first and critical work last.
 */
export const PRIORITIES = ['critical', 'default', 'sheddable'] as const;
export type Priority = (typeof PRIORITIES)[number];

/** Rank in PRIORITIES: 0 is served first and refused last. */
export const PRIORITY_RANK: Readonly<Record<Priority, number>> = { critical: 0, default: 1, sheddable: 2 };

/** A header's value as a class; anything else (absent, misspelt) is `fallback`, so a client cannot fail a request by naming a class. */
export function priorityOf(value: string | undefined, fallback: Priority): Priority {
  if (value === 'critical' || value === 'default' || value === 'sheddable') return value;
  return fallback;
}
