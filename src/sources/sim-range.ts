/**
 * Range handling of the simulators (Genesys media links, legacy recorders): like a real origin,
 * a single "bytes=" range is honoured and anything else gets the whole object.
 */
export function parseSimRange(v: string | undefined, size: number): { start: number; end: number } | 'unsatisfiable' | null {
  const m = v ? /^bytes=(\d*)-(\d*)$/.exec(v.trim()) : null;
  if (!m || (m[1] === '' && m[2] === '')) return null;
  if (m[1] === '') {
    const n = Number(m[2]);
    if (n === 0 || size === 0) return 'unsatisfiable';
    return { start: Math.max(0, size - n), end: size - 1 };
  }
  const start = Number(m[1]);
  const end = m[2] === '' ? size - 1 : Math.min(Number(m[2]), size - 1);
  if (m[2] !== '' && Number(m[2]) < start) return null;
  if (start >= size) return 'unsatisfiable';
  return { start, end };
}
