import { PassThrough, Readable } from 'node:stream';
import yazl from 'yazl';
import type { Principal } from '../../access/principal.js';
import type { AuditEvent } from '../../audit/event.js';
import { tenantVerifyView } from '../../audit/tenant-view.js';
import { recordingMetadata } from '../../catalog/metadata.js';
import type { Recording } from '../../catalog/model.js';
import type { AppDeps } from '../../deps.js';
import { AppError, isAppError } from '../../errors.js';
import { Meter } from '../../http/meter.js';
import type { AudioFormat } from '../../media/format.js';
import { NoCopyOpened, type OpenedCopy } from '../../resolve/open-copy.js';
import { openRecording } from '../../resolve/open-recording.js';
import { retentionStatus } from '../../resolve/retention.js';
import type { EvidenceSigner } from './signer.js';
import { evidenceReadme } from './readme.js';

export const EVIDENCE_FORMAT = 'custodian-evidence/1';
export const SIGNED_FILE = 'SHA256SUMS.sha256';
export const SIGNATURE_FILE = 'SHA256SUMS.sha256.sig';
export const MANIFEST_FILE = 'manifest.json';
export const SUMS_FILE = 'SHA256SUMS';

/**
 * The entries manifest.json names but cannot list in `files` with a digest: each is written from the
 * manifest's own bytes (SHA256SUMS holds the manifest's digest, and the signature chain is over
 * SHA256SUMS), and no file can hold a digest of itself or of a file that digests it. Every other entry
 * of the package is in `files` with its size and SHA-256.
 */
export const FILES_NOT_LISTED: readonly { path: string; reason: string }[] = [
  { path: MANIFEST_FILE, reason: 'this manifest: a file cannot hold its own digest; SHA256SUMS lists it' },
  { path: SUMS_FILE, reason: 'written after this manifest, whose digest it holds; its own digest is in ' + SIGNED_FILE },
  { path: SIGNED_FILE, reason: 'the digest of SHA256SUMS, written after it; ' + SIGNATURE_FILE + ' signs it' },
  { path: SIGNATURE_FILE, reason: 'the Ed25519 signature over ' + SIGNED_FILE + ', written last' },
];

export interface EvidenceItem {
  recording: Recording;
  /** The ref the caller gave. */
  ref: string;
  /** The `recording.export` audit event written for this recording before the build started. */
  exportEventId: string;
}

export interface EvidenceInput {
  packageId: string;
  createdAt: Date;
  principal: Principal;
  purpose: string;
  items: EvidenceItem[];
}

export interface EvidenceProgress {
  recordings_total: number;
  recordings_done: number;
  files_done: number;
  /** Uncompressed bytes written into the package so far. */
  bytes_done: number;
}

export interface PackagedFile {
  path: string;
  sha256: string;
  bytes: number;
}

export interface Problem {
  recording_id: string;
  file: 'original' | 'playable';
  code: string;
  detail: string;
}

export interface EvidenceResult {
  files: PackagedFile[];
  problems: Problem[];
}

const EXT: Record<string, string> = { 'audio/wav': 'wav', 'audio/mpeg': 'mp3', 'audio/ogg': 'ogg' };

/**
 * Writes an evidence package as a streamed ZIP: entries one after the other, each hashed as it
 * flows (nothing is buffered whole except small JSON), then a manifest (every entry before it with
 * size and SHA-256, and the names of the four written from it: FILES_NOT_LISTED), a SHA256SUMS file
 * over every file, and its Ed25519 signature. Per recording: normalised metadata, the original bytes
 * (checked against the catalog SHA-256 when it has one), a playable WAV when the original needs
 * transcoding, and the recording's audit events. A copy that cannot be opened is reported in the
 * manifest, not silently dropped; a stream that breaks midway fails the whole package (the
 * returned stream errors, so the receiver never gets a complete-looking ZIP).
 */
export function buildEvidencePackage(
  deps: AppDeps,
  signer: EvidenceSigner,
  input: EvidenceInput,
  signal: AbortSignal,
  onProgress: (p: EvidenceProgress) => void = () => {},
): { stream: Readable; done: Promise<EvidenceResult> } {
  const zip = new yazl.ZipFile();
  const out = new PassThrough({ highWaterMark: 64 * 1024 });
  zip.outputStream.pipe(out);
  const mtime = input.createdAt;
  const files: PackagedFile[] = [];
  const problems: Problem[] = [];
  const progress: EvidenceProgress = { recordings_total: input.items.length, recordings_done: 0, files_done: 0, bytes_done: 0 };
  let failure: Error | undefined;
  const fail = (e: unknown) => {
    failure ??= e instanceof Error ? e : new Error(String(e));
    return failure;
  };
  zip.on('error', (e: Error) => fail(e));

  const counted = (f: PackagedFile) => {
    files.push(f);
    progress.files_done++;
    progress.bytes_done += f.bytes;
    onProgress({ ...progress });
    return f;
  };

  /** Adds one streamed entry and resolves once the ZIP has consumed all of it. */
  const addStream = (path: string, body: Readable, opts: { compress: boolean; expectSha256?: string | null }): Promise<PackagedFile> =>
    new Promise((resolve, reject) => {
      const meter = new Meter({ expectSha256: opts.expectSha256 ?? null });
      const onError = (e: unknown) => {
        body.destroy();
        meter.destroy();
        reject(fail(e));
      };
      const onAbort = () => onError(signal.reason ?? new Error('aborted'));
      body.once('error', onError);
      meter.once('error', onError);
      signal.addEventListener('abort', onAbort, { once: true });
      meter.once('end', () => {
        signal.removeEventListener('abort', onAbort);
        resolve(counted({ path, sha256: meter.sha256(), bytes: meter.bytes }));
      });
      zip.addReadStreamLazy(path, { compress: opts.compress, mtime, mode: 0o100644 }, (cb) => cb(null, body.pipe(meter)));
    });

  const addBuffer = (path: string, data: Buffer): Promise<PackagedFile> => addStream(path, Readable.from([data]), { compress: true });

  // Opened as every reader opens (open-recording.ts): keys checked, a moved recording looked for.
  const open = async (rec: Recording, format: AudioFormat, note: (d: Record<string, unknown>) => void): Promise<OpenedCopy | AppError> => {
    try {
      return await openRecording(deps, rec, format, signal, note);
    } catch (e) {
      if (e instanceof NoCopyOpened) return e.last;
      if (isAppError(e)) return e;
      throw e;
    }
  };

  const done = (async (): Promise<EvidenceResult> => {
    const readme = await addBuffer('README.txt', Buffer.from(evidenceReadme(input, signer)));
    await addBuffer('public-key.pem', Buffer.from(signer.publicKeyPem));
    const recordingsOut: Record<string, unknown>[] = [];

    for (const item of input.items) {
      // What the opens noted (copies refused for their key, a finder round) goes into the entry.
      const notes: Record<string, unknown> = {};
      const note = (d: Record<string, unknown>) => Object.assign(notes, d);
      // The stored bytes, exactly as the source holds them: opened before the metadata is written, so
      // that a recording a finder found moved is described with the copy it was found as.
      const original = await open(item.recording, 'original', note);
      const rec = (!(original instanceof AppError) && original.rediscovered) || item.recording;
      const dir = `recordings/${rec.id}`;
      const retention = retentionStatus(rec);
      const entry: Record<string, unknown> = {
        id: rec.id,
        ref: item.ref,
        call_id: rec.callId,
        retention_status: retention,
        legal_hold: rec.legalHold,
        export_audit_event_id: item.exportEventId,
      };
      entry.metadata = (await addBuffer(`${dir}/metadata.json`, Buffer.from(JSON.stringify(recordingMetadata(rec, retention), null, 2) + '\n'))).path;

      if (original instanceof AppError) {
        problems.push({ recording_id: rec.id, file: 'original', code: original.code, detail: original.message });
        entry.original = { error: { code: original.code, detail: original.message } };
      } else {
        const p = original.prepared;
        const ext = EXT[p.contentType] ?? (p.codec === 'g729' ? 'g729' : 'bin');
        const whole = p.length === undefined || original.totalSize === undefined || p.length === original.totalSize;
        const f = await addStream(`${dir}/original.${ext}`, p.body, { compress: false, expectSha256: whole ? original.copy.sha256 : null });
        entry.original = {
          ...f,
          codec: p.codec,
          content_type: p.contentType,
          copy_id: original.copy.id,
          origin: original.copy.origin,
          source_system: original.copy.sourceSystem,
          catalog_sha256: original.copy.sha256,
          // A mismatch never gets here: the Meter fails the package first.
          catalog_sha256_verified: original.copy.sha256 ? true : null,
        };
      }

      // A copy any player opens: PCM WAV through the same media path as the API (G.729, GSM, … transcoded).
      const playable = await open(rec, 'wav', note);
      if (playable instanceof AppError) {
        problems.push({ recording_id: rec.id, file: 'playable', code: playable.code, detail: playable.message });
        entry.playable = { error: { code: playable.code, detail: playable.message } };
      } else if (!playable.prepared.transcoded && !(original instanceof AppError) && original.copy.id === playable.copy.id) {
        playable.prepared.body.destroy();
        entry.playable = { same_as: 'original', reason: `the original is already ${playable.prepared.codec} in WAV` };
      } else {
        const f = await addStream(`${dir}/playable.wav`, playable.prepared.body, { compress: false });
        entry.playable = { ...f, transcoded_from: playable.prepared.codec, transcoded: playable.prepared.transcoded, copy_id: playable.copy.id };
      }

      const events = await addStream(`${dir}/audit-events.jsonl`, Readable.from(auditLines(deps, rec.tenantId, rec.id)), { compress: true });
      entry.audit_events = events.path;
      recordingsOut.push({ ...entry, ...notes });
      progress.recordings_done++;
      onProgress({ ...progress });
    }

    const chain = await deps.auditRepo.verify();
    const manifest = {
      format: EVIDENCE_FORMAT,
      package_id: input.packageId,
      created_at: input.createdAt.toISOString(),
      created_by: { tenant: input.principal.tenantId, principal: input.principal.id, kind: input.principal.kind },
      purpose: input.purpose,
      complete: problems.length === 0,
      problems,
      // The tenant's view of the shared chain (audit/tenant-view.ts): the package leaves the gateway, and the
      // chain's event count and head hash would tell whoever reads it how busy the other tenants are.
      audit_chain: { verified_at: new Date().toISOString(), ...(await tenantVerifyView(deps.auditRepo, input.principal.tenantId, chain)) },
      recordings: recordingsOut,
      // Every entry written so far: all but the four below, which are written from this manifest's bytes.
      files: [...files],
      files_not_listed: FILES_NOT_LISTED,
      signature: {
        algorithm: signer.algorithm,
        key_id: signer.keyId,
        public_key_sha256: signer.fingerprint,
        public_key: 'public-key.pem',
        signed_file: SIGNED_FILE,
        signature_file: SIGNATURE_FILE,
        chain: `${SIGNATURE_FILE} signs ${SIGNED_FILE}, which holds the SHA-256 of SHA256SUMS, which holds the SHA-256 of every other file`,
      },
      readme: readme.path,
    };
    await addBuffer(MANIFEST_FILE, Buffer.from(JSON.stringify(manifest, null, 2) + '\n'));
    // sha256sum's own format: "<hex>  <path>", one line per file, so `sha256sum -c` checks them all.
    const sums = Buffer.from(files.map((f) => `${f.sha256}  ${f.path}\n`).join(''));
    const sumsFile = await addBuffer(SUMS_FILE, sums);
    // What is signed is one line, in sha256sum format too: the digest of SHA256SUMS. A signature over a
    // few dozen bytes works with every key service (KMS signs at most 4 KiB of raw message), and
    // the chain signature → SHA256SUMS → every file is checked with the same two standard tools.
    const signed = Buffer.from(`${sumsFile.sha256}  SHA256SUMS\n`);
    const sig = await signer.sign(signed);
    zip.addBuffer(signed, SIGNED_FILE, { compress: false, mtime, mode: 0o100644 });
    zip.addBuffer(sig, SIGNATURE_FILE, { compress: false, mtime, mode: 0o100644 });
    zip.end();
    return { files: [...files.filter((f) => f !== sumsFile), sumsFile], problems };
  })();

  done.catch((e: unknown) => {
    const err = fail(e);
    // Never a clean end after a failure: the receiver must see a broken transfer.
    out.destroy(err);
    (zip.outputStream as Readable).destroy();
  });
  return { stream: out, done };
}

/** The recording's audit events, one JSON object per line, paged so memory stays flat. */
async function* auditLines(deps: AppDeps, tenantId: string, recordingPk: string): AsyncGenerator<Buffer> {
  let after: number | undefined;
  for (;;) {
    const page = await deps.auditRepo.query({ tenantId, recordingPk, limit: 500, ...(after !== undefined ? { afterSeq: after } : {}) });
    if (page.items.length) yield Buffer.from(page.items.map((e: AuditEvent) => JSON.stringify(e)).join('\n') + '\n');
    if (page.next === null) return;
    after = page.next;
  }
}
