import SQLite from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import { withStatementCache } from './statement-cache.js';

describe('withStatementCache', () => {
  it('prepares a statement once and reuses it', () => {
    const db = new SQLite(':memory:');
    const cached = withStatementCache(db);
    expect(cached.prepare('select 1 as x')).toBe(cached.prepare('select 1 as x'));
    expect(cached.prepare('select 1 as x').all([])).toEqual([{ x: 1 }]);
    db.close();
  });

  it('gives a fresh statement while the cached one is still iterating (a streamed query)', () => {
    const db = new SQLite(':memory:');
    db.exec('create table t (v int); insert into t values (1), (2), (3)');
    const cached = withStatementCache(db);
    const first = cached.prepare('select v from t order by v');
    const it1 = first.iterate([]);
    expect((it1.next().value as { v: number }).v).toBe(1);
    const second = cached.prepare('select v from t order by v');
    expect(second).not.toBe(first);
    expect(second.all([])).toHaveLength(3);
    expect([...it1].map((r) => (r as { v: number }).v)).toEqual([2, 3]);
    db.close();
  });

  it('keeps at most max statements, dropping the least recently used', () => {
    const db = new SQLite(':memory:');
    const cached = withStatementCache(db, 2);
    const a = cached.prepare('select 1');
    cached.prepare('select 2');
    expect(cached.prepare('select 1')).toBe(a); // a is now the most recent
    cached.prepare('select 3'); // evicts "select 2"
    expect(cached.prepare('select 1')).toBe(a);
    const b2 = cached.prepare('select 2');
    expect(cached.prepare('select 2')).toBe(b2);
    db.close();
  });
});
