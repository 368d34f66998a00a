/** A count and its noun: "1 device", "3 devices" (`many` where the plural is not the noun + s). Messages had said "device(s)". */
export function counted(n: number, one: string, many = `${one}s`): string {
  return `${n} ${n === 1 ? one : many}`;
}

/** The verb after a counted noun: "1 file is", "2 files are" (`one` / `many`, e.g. 'was' / 'were'). */
export function verb(n: number, one: string, many: string): string {
  return n === 1 ? one : many;
}
