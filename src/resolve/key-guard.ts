import type { Copy, Recording } from '../catalog/model.js';
import type { AppDeps } from '../deps.js';
import { AppError } from '../errors.js';
import type { KeyCheck, KeyService } from '../keys/keyring.js';
import type { AudioFormat } from '../media/format.js';
import { orderCopies } from './copy-policy.js';
import { NoCopyOpened, type OpenedCopy, openFirstCopy } from './open-copy.js';

export interface KeyRefusal {
  copy_id: string;
  key_id: string;
  state: KeyCheck['state'];
}

/** The client-facing error for a key state. Key ids stay out of the problem body (they are in the audit event). */
export function keyStateError(r: KeyRefusal): AppError {
  const extra = { key_state: r.state };
  if (r.state === 'disabled' || r.state === 'pending_deletion') {
    return new AppError('key.disabled', `the key protecting the recording is ${r.state === 'disabled' ? 'disabled' : 'scheduled for deletion'}`, { extra });
  }
  if (r.state === 'unknown') return new AppError('key.unknown', undefined, { extra });
  return new AppError('key.unavailable', 'the key service could not say whether the key is usable', { extra });
}

/**
 * Checks, through the key service, the key of every copy whose catalog row names one (key_id).
 * Copies whose key is not enabled are left out, so another copy can serve; when none is left
 * of those that could be read, the refusal is the answer. Copies without a key_id (encrypted by
 * their source with its own keys, or not at all) are not checked here.
 */
export async function withUsableKeys(keys: KeyService, rec: Recording, prefer: 'cloud' | 'legacy'): Promise<{ rec: Recording; refused: KeyRefusal[]; blocked?: AppError }> {
  const ids = [...new Set(rec.copies.map((c) => c.keyId).filter((k): k is string => !!k))];
  if (!ids.length) return { rec, refused: [] };
  const checks = new Map((await Promise.all(ids.map((id) => keys.checkKey(id)))).map((c) => [c.keyId, c]));
  const refused: KeyRefusal[] = [];
  const usable = rec.copies.filter((c) => {
    const state = c.keyId ? checks.get(c.keyId)?.state : 'enabled';
    if (state === 'enabled' || !c.keyId || !state) return true;
    refused.push({ copy_id: c.id, key_id: c.keyId, state });
    return false;
  });
  const filtered = { ...rec, copies: usable };
  const candidates = orderCopies(rec, prefer);
  if (candidates.length && !orderCopies(filtered, prefer).length) {
    // Every readable copy is locked by its key: say why (the first, in policy order).
    const first = refused.find((r) => r.copy_id === candidates[0]!.id) ?? refused[0]!;
    return { rec: filtered, refused, blocked: keyStateError(first) };
  }
  return { rec: filtered, refused };
}

/**
 * A source's refusal that a key explains: a connector's own key error; a 403 on a copy that names
 * its key (an S3 SSE-KMS key the bucket may no longer use); Genesys's fileState ERROR, which it
 * also reports when a customer-managed key is unavailable.
 */
export function isKeyRefusal(err: AppError, copy: Copy | undefined): boolean {
  if (err.code === 'source.key_refused') return true;
  if (err.code === 'source.auth_failed') return !!copy?.keyId;
  return err.code === 'source.bad_gateway' && err.extra.file_state === 'ERROR';
}

function refusedCopy(e: NoCopyOpened, rec: Recording): Copy | undefined {
  const attempt = [...e.attempts].reverse().find((a) => a.code === e.last.code);
  return rec.copies.find((c) => c.id === attempt?.copy_id);
}

/**
 * openFirstCopy with the key rules: copies whose key the key service refuses are skipped (or the
 * request refused); a key-related refusal by the source gets one more try after the copy's
 * catalog row is read again (a rotation or re-import may have changed it; a Genesys read fetches
 * the recording's metadata afresh); if that fails too, the answer is source.key_refused.
 * `note` adds what happened to the request's audit event.
 */
export async function openCopyCheckingKeys(
  deps: AppDeps,
  rec: Recording,
  format: AudioFormat,
  signal: AbortSignal,
  note: (detail: Record<string, unknown>) => void,
  log?: (msg: string, o: object) => void,
): Promise<OpenedCopy> {
  const prefer = deps.config.policy.prefer;
  const checked = await withUsableKeys(deps.keys, rec, prefer);
  if (checked.refused.length) note({ key_refused: checked.refused });
  if (checked.blocked) throw checked.blocked;
  try {
    return await openFirstCopy(deps, checked.rec, format, signal, log);
  } catch (e) {
    if (!(e instanceof NoCopyOpened) || signal.aborted) throw e;
    const copy = refusedCopy(e, checked.rec);
    if (!isKeyRefusal(e.last, copy)) throw e;
    log?.('the source refused a copy for a key reason; refreshing its metadata and trying once more', { copy: copy?.id, code: e.last.code });
    note({ key_retry: { copy_id: copy?.id ?? null, code: e.last.code } });
    const fresh = (await deps.recordings.get(rec.tenantId, rec.id)) ?? rec;
    const again = await withUsableKeys(deps.keys, fresh, prefer);
    if (again.refused.length) note({ key_refused: again.refused });
    if (again.blocked) throw again.blocked;
    try {
      return await openFirstCopy(deps, again.rec, format, signal, log);
    } catch (e2) {
      if (e2 instanceof NoCopyOpened && isKeyRefusal(e2.last, refusedCopy(e2, again.rec))) {
        const last = new AppError('source.key_refused', `${e2.last.message} (after a metadata refresh and a second try)`, { cause: e2.last, extra: { source_code: e2.last.code } });
        throw new NoCopyOpened(last, [...e.attempts, ...e2.attempts]);
      }
      throw e2;
    }
  }
}
