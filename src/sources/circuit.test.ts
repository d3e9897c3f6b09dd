import { describe, expect, it } from 'vitest';
import { AppError } from '../errors.js';
import { SourceCircuit, isOutage, notAnOutage } from './circuit.js';
import { abortedError, sleep } from './net.js';

const outage = () => new AppError('source.unavailable', 'not reachable (ECONNREFUSED)');
const reject = (e: unknown) => () => Promise.reject(e);
/** What a call threw (undefined when it succeeded). */
const settle = (p: Promise<unknown>) =>
  p.then(
    () => undefined,
    (e: unknown) => e,
  );

describe('SourceCircuit and caller aborts', () => {
  it('a caller abort (abortedError) is never an outage, however many there are', async () => {
    const c = new SourceCircuit('s', { failures: 2, half_open_after_ms: 60_000 });
    for (let i = 0; i < 5; i++) expect(await settle(c.execute(reject(abortedError())))).toMatchObject({ code: 'source.unavailable', message: 'request aborted' });
    expect(c.stats()).toMatchObject({ circuit: 'closed', circuitOpenings: 0 });
    await expect(c.execute(async () => 'ok')).resolves.toBe('ok');
  });

  it('whatever a call throws once its caller has gone is not counted either (a wait cut short, a request torn down)', async () => {
    const c = new SourceCircuit('s', { failures: 2, half_open_after_ms: 60_000 });
    for (let i = 0; i < 3; i++) {
      const ac = new AbortController();
      const call = c.execute(async () => {
        // The abort surfaces as some other failure: the socket torn down under a request.
        await sleep(1_000, ac.signal).catch(() => {
          throw outage();
        });
      }, ac.signal);
      ac.abort();
      // The caller sees what was thrown, unchanged.
      expect(await settle(call)).toMatchObject({ code: 'source.unavailable', message: 'not reachable (ECONNREFUSED)' });
    }
    expect(c.stats()).toMatchObject({ circuit: 'closed', circuitOpenings: 0 });
  });

  it('aborts are neutral: they neither count nor reset a run of real outages', async () => {
    const c = new SourceCircuit('s', { failures: 2, half_open_after_ms: 60_000 });
    await settle(c.execute(reject(outage())));
    await settle(c.execute(reject(abortedError())));
    await settle(c.execute(reject(outage())));
    expect(c.stats()).toMatchObject({ circuit: 'open', circuitOpenings: 1 });
  });

  it('still opens on real outages, with a connector predicate too (legacy-http marks its source failures)', async () => {
    const marked = new WeakSet<object>();
    const failure = () => {
      const e = outage();
      marked.add(e);
      return e;
    };
    const c = new SourceCircuit('s', { failures: 2, half_open_after_ms: 60_000 }, (e) => typeof e === 'object' && e !== null && marked.has(e));
    // Even a predicate that would take it cannot make an abort count.
    const abort = abortedError();
    marked.add(abort);
    for (let i = 0; i < 3; i++) await settle(c.execute(reject(abort)));
    expect(c.stats().circuit).toBe('closed');
    for (let i = 0; i < 2; i++) await settle(c.execute(reject(failure())));
    const fast = await settle(c.execute(async () => 'never'));
    expect(fast).toMatchObject({ code: 'source.unavailable', extra: { circuit: 'open' } });
  });
});

describe('SourceCircuit and answers about one request (notAnOutage)', () => {
  /** What Genesys says of one recording in fileState ERROR: the client's code is the outage code. */
  const aboutOne = () => notAnOutage(new AppError('source.bad_gateway', 'fileState ERROR', { extra: { file_state: 'ERROR' } }));

  it('isOutage: the same code counts unmarked, not marked', () => {
    expect(isOutage(new AppError('source.bad_gateway', 'Genesys answered 500'))).toBe(true);
    expect(isOutage(aboutOne())).toBe(false);
  });

  it('never counted, however many, and the caller sees the error unchanged', async () => {
    const c = new SourceCircuit('s', { failures: 2, half_open_after_ms: 60_000 });
    for (let i = 0; i < 5; i++) expect(await settle(c.execute(reject(aboutOne())))).toMatchObject({ code: 'source.bad_gateway', extra: { file_state: 'ERROR' } });
    expect(c.stats()).toMatchObject({ circuit: 'closed', circuitOpenings: 0 });
    await expect(c.execute(async () => 'ok')).resolves.toBe('ok');
  });

  it('not even by a connector predicate that would take it', async () => {
    const c = new SourceCircuit('s', { failures: 1, half_open_after_ms: 60_000 }, () => true);
    for (let i = 0; i < 3; i++) await settle(c.execute(reject(aboutOne())));
    expect(c.stats().circuit).toBe('closed');
  });

  it('neutral: neither counts towards nor resets a run of real outages', async () => {
    const c = new SourceCircuit('s', { failures: 2, half_open_after_ms: 60_000 });
    await settle(c.execute(reject(outage())));
    await settle(c.execute(reject(aboutOne())));
    expect(c.stats().circuit).toBe('closed');
    await settle(c.execute(reject(outage())));
    expect(c.stats()).toMatchObject({ circuit: 'open', circuitOpenings: 1 });
  });

  it('a half-open trial answered about one recording closes the breaker: the source answered', async () => {
    const c = new SourceCircuit('s', { failures: 1, half_open_after_ms: 100 });
    await settle(c.execute(reject(outage())));
    expect(c.stats().circuit).toBe('open');
    await sleep(150);
    expect(await settle(c.execute(reject(aboutOne())))).toMatchObject({ code: 'source.bad_gateway' });
    expect(c.stats().circuit).toBe('closed');
  });
});
