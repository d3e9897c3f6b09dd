import type { FastifyRequest } from 'fastify';
import type { AppDeps } from '../../deps.js';
import { AppError } from '../../errors.js';
import { keyStateError, type KeyRefusal } from '../../resolve/key-guard.js';
import type { EvidenceJob } from './job-store.js';
import { refuseExpired } from '../resolve.js';

/**
 * A ready package is checked again at download, as a job's staged media is (http/routes/jobs.ts):
 * each recording in it must still be within retention (or held), and no copy of it may name a key
 * the key service now refuses — a key disabled or deleted since the package was built withdraws
 * the recording (crypto-shredding), and the package holds its bytes. Which copy the package read
 * is not kept with the job, so any refused key of the recording refuses the package: the
 * conservative side. A recording merged away since is checked under the recording it joined.
 */
export async function recheckPackaged(deps: AppDeps, req: FastifyRequest, job: EvidenceJob): Promise<void> {
  for (const item of job.input.items) {
    const rec = (await deps.recordings.get(job.tenantId, item.recordingPk)) ?? (await deps.recordings.findByRef(job.tenantId, item.ref));
    if (!rec) continue;
    refuseExpired(rec, item.ref);
    const keyed = rec.copies.filter((c) => c.keyId);
    const checks = await Promise.all(keyed.map(async (c) => ({ copy: c, check: await deps.keys.checkKey(c.keyId!) })));
    const refused: KeyRefusal[] = checks.filter((x) => x.check.state !== 'enabled').map((x) => ({ copy_id: x.copy.id, key_id: x.copy.keyId!, state: x.check.state }));
    if (!refused.length) continue;
    req.audit.detail = { ...req.audit.detail, key_refused: refused, ref: item.ref };
    const e = keyStateError(refused[0]!);
    throw new AppError(e.code, `"${item.ref}": ${e.message}`, { extra: { ...e.extra, ref: item.ref } });
  }
}
