import { createHash } from 'node:crypto';
import type { KeyService } from '../keys/keyring.js';
import type { AuditRepository, StoredEvent } from './audit-repository.js';

export const EXPORT_FORMAT = 'custodian.audit-export.v1';

export interface AuditExportOptions {
  /** ISO instants: events with from <= occurred_at < to. */
  from: string;
  to: string;
  /** One tenant's events; absent or null: the whole chain in the window (contiguous). */
  tenantId?: string | null;
}

/** What the signed manifest says (docs/AUDIT.md). */
export interface ExportManifest {
  format: typeof EXPORT_FORMAT;
  scope: { tenant: string | null; from: string; to: string };
  /** true: every event between first_seq and last_seq is present, so each links to the one before. */
  contiguous: boolean;
  count: number;
  first_seq: number | null;
  last_seq: number | null;
  first_hash: string | null;
  last_hash: string | null;
  /** prev_hash of the first event: where the exported run hangs in the chain. */
  first_prev_hash: string | null;
  /** Lowercase hex SHA-256 of every byte before the manifest line (event lines with their "\n"). */
  lines_sha256: string;
  /**
   * The head of the whole chain when the export began: whole-chain exports only (the operator's,
   * `custodian audit export` without `--tenant`). A tenant export leaves it out — a tenant never
   * gets the chain's head (docs/AUDIT.md): its seq counts every tenant's events, so two exports
   * would tell how busy the others were in between. Nothing in a tenant export links to it.
   */
  chain_head?: { seq: number; hash: string } | null;
  created_at: string;
  key_id: string;
  algorithm: 'Ed25519';
  /** SPKI PEM; pin it out of band (its SHA-256 over DER is the local key id). */
  public_key: string;
}

/** The manifest line: the manifest as JSON text (the exact signed bytes) and its signature. */
export interface ManifestLine {
  type: 'manifest';
  manifest: string;
  signature: string;
}

/**
 * The lines of an export, each ending in "\n": one JSON event per line in chain order
 * (`detail` as the stored JSON text, so the chain hash can be recomputed byte for byte), then
 * the signed manifest. A generator, so HTTP and the CLI stream it without holding it.
 */
export async function* auditExportLines(repo: AuditRepository, keys: KeyService, opts: AuditExportOptions, now: () => Date = () => new Date()): AsyncGenerator<string> {
  const head = await repo.head();
  const digest = createHash('sha256');
  let count = 0;
  let first: StoredEvent | undefined;
  let last: StoredEvent | undefined;
  if (head) {
    for await (const e of repo.exportEvents({ tenantId: opts.tenantId ?? null, from: opts.from, to: opts.to, throughSeq: head.seq })) {
      const line = JSON.stringify({ type: 'event', ...e }) + '\n';
      digest.update(line);
      count++;
      first ??= e;
      last = e;
      yield line;
    }
  }
  const keyId = await keys.signingKeyId();
  const manifest: ExportManifest = {
    format: EXPORT_FORMAT,
    scope: { tenant: opts.tenantId ?? null, from: opts.from, to: opts.to },
    contiguous: !opts.tenantId,
    count,
    first_seq: first?.seq ?? null,
    last_seq: last?.seq ?? null,
    first_hash: first?.hash ?? null,
    last_hash: last?.hash ?? null,
    first_prev_hash: first ? first.prevHash : null,
    lines_sha256: digest.digest('hex'),
    ...(opts.tenantId ? {} : { chain_head: head }),
    created_at: now().toISOString(),
    key_id: keyId,
    algorithm: 'Ed25519',
    public_key: await keys.publicKey(keyId),
  };
  const text = JSON.stringify(manifest);
  const sig = await keys.sign(Buffer.from(text));
  if (sig.keyId !== keyId) throw new Error(`the key service signed with ${sig.keyId}, not ${keyId}`);
  const line: ManifestLine = { type: 'manifest', manifest: text, signature: sig.signature };
  yield JSON.stringify(line) + '\n';
}
