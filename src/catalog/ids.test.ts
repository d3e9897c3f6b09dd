import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { newId } from './ids.js';

describe('newId', () => {
  it('makes RFC 9562 version-7 UUIDs that sort in creation order, also many in one millisecond', () => {
    const ids = Array.from({ length: 10_000 }, newId);
    for (const id of ids.slice(0, 50)) expect(z.uuid().safeParse(id).success).toBe(true);
    expect(ids[0]![14]).toBe('7');
    expect(new Set(ids).size).toBe(ids.length);
    expect([...ids].sort()).toEqual(ids);
    const ms = parseInt(ids[0]!.slice(0, 8) + ids[0]!.slice(9, 13), 16);
    expect(Math.abs(ms - Date.now())).toBeLessThan(5_000);
  });
});
