import { describe, expect, it } from 'vitest';
import { HandoffClock } from './handoff-clock.js';

describe('HandoffClock', () => {
  it('before any hand-off was measured, plans for the prior', () => {
    const c = new HandoffClock(64, 25);
    expect(c.headroom(2000)).toBe(25);
    expect(c.remaining(2000, 15)).toBe(1960);
    expect(c.headroom(40)).toBe(10);
  });

  it('ends the wait early by the p95 of recent hand-off costs', () => {
    const c = new HandoffClock(20);
    for (let i = 1; i <= 20; i++) c.record(i); // 1..20 ms
    expect(c.headroom(2000)).toBe(19);
    expect(c.remaining(2000, 1)).toBe(1980);
  });

  it('never plans for more than a quarter of the budget, and never waits a negative time', () => {
    const c = new HandoffClock();
    c.record(5_000);
    expect(c.headroom(2000)).toBe(500);
    expect(c.remaining(2000, 1800)).toBe(0);
  });

  it('forgets old samples: the window slides', () => {
    const c = new HandoffClock(4);
    for (const ms of [100, 100, 100, 100]) c.record(ms);
    for (const ms of [2, 2, 2, 2]) c.record(ms);
    expect(c.headroom(2000)).toBe(2);
  });

  it('ignores nonsense samples', () => {
    const c = new HandoffClock(64, 0);
    c.record(Number.NaN);
    c.record(-3);
    expect(c.headroom(2000)).toBe(0);
  });
});
