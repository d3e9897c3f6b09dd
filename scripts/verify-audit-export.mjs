#!/usr/bin/env node
// Verifies a custodian audit export offline (docs/AUDIT.md). Plain Node >= 18, no dependencies:
//
//   node verify-audit-export.mjs export.jsonl [--pubkey pinned.pem]
//
// Checks, streaming the file: every event's hash recomputed from its fields; the links between
// events (when the export is contiguous); the SHA-256 of every byte before the manifest line; the
// manifest's counts and bounds; its Ed25519 signature (with the key in the manifest, which must
// be the pinned key when --pubkey is given). Exit 0 when all hold, 1 at the first failure, 2 on
// usage errors. Prints one JSON line either way.
import { createHash, createPublicKey, verify } from 'node:crypto';
import { createReadStream, readFileSync } from 'node:fs';

const args = process.argv.slice(2);
const file = args.find((a) => !a.startsWith('--'));
const pinIdx = args.indexOf('--pubkey');
const pinned = pinIdx >= 0 ? args[pinIdx + 1] : undefined;
if (!file || (pinIdx >= 0 && !pinned)) {
  process.stderr.write('usage: node verify-audit-export.mjs export.jsonl [--pubkey pinned.pem]\n');
  process.exit(2);
}

const sha256 = (data) => createHash('sha256').update(data).digest('hex');

/** The chain hash of one event: SHA-256 of this JSON array, in this order (src/audit/chain.ts). */
function chainHash(e) {
  return sha256(
    JSON.stringify([
      'v1', e.id, e.occurredAt, e.tenantId, e.principalId, e.principalKind, e.callerId, e.requestId, e.auditLogId,
      e.httpRequestId, e.action, e.ref, e.recordingPk, e.copyId, e.origin, e.outcome, e.status, e.errorCode,
      e.bytesSent, e.sha256, e.clientIp, e.userAgent, e.relatedEventId, e.detail, e.prevHash,
    ]),
  );
}

function fail(reason, extra = {}) {
  process.stdout.write(JSON.stringify({ ok: false, reason, ...extra }) + '\n');
  process.exit(1);
}

const digest = createHash('sha256');
let held = null; // the last complete line seen: the manifest if no other follows
let count = 0;
let first = null;
let last = null;
let lineNo = 0;
const events = [];

function onEventLine(bytes) {
  lineNo++;
  digest.update(bytes);
  let e;
  try {
    e = JSON.parse(bytes.toString('utf8'));
  } catch {
    fail('not_json', { line: lineNo });
  }
  if (e.type !== 'event') fail('unexpected_line', { line: lineNo });
  if (chainHash(e) !== e.hash) fail('hash_mismatch', { line: lineNo, seq: e.seq, id: e.id });
  if (last && !(e.seq > last.seq)) fail('order', { line: lineNo, seq: e.seq });
  events.push({ seq: e.seq, prevHash: e.prevHash, hash: e.hash });
  // Links are checked once the manifest says whether the run is contiguous; keep only what that needs.
  if (events.length > 1) {
    const [a, b] = events;
    if (b.prevHash !== a.hash) events.broken ??= { line: lineNo, seq: b.seq };
    events.shift();
  }
  count++;
  first ??= e;
  last = e;
}

let pending = Buffer.alloc(0);
for await (const chunk of createReadStream(file)) {
  pending = pending.length ? Buffer.concat([pending, chunk]) : chunk;
  let nl;
  while ((nl = pending.indexOf(0x0a)) >= 0) {
    const line = pending.subarray(0, nl + 1);
    pending = pending.subarray(nl + 1);
    if (held) onEventLine(held);
    held = Buffer.from(line);
  }
}
if (pending.length) fail('no_final_newline');
if (!held) fail('empty');

let line;
let manifest;
try {
  line = JSON.parse(held.toString('utf8'));
  manifest = JSON.parse(line.manifest);
} catch {
  fail('no_manifest');
}
if (line.type !== 'manifest' || manifest.format !== 'custodian.audit-export.v1') fail('no_manifest');

// The signature, with the manifest's key; that key must be the one pinned out of band.
const key = createPublicKey(manifest.public_key);
if (key.asymmetricKeyType !== 'ed25519') fail('not_ed25519');
const fingerprint = 'sha256:' + sha256(key.export({ type: 'spki', format: 'der' }));
if (pinned) {
  const pin = createPublicKey(readFileSync(pinned));
  if (!pin.export({ type: 'spki', format: 'der' }).equals(key.export({ type: 'spki', format: 'der' }))) fail('key_not_pinned', { fingerprint });
}
if (!verify(null, Buffer.from(line.manifest, 'utf8'), key, Buffer.from(line.signature, 'base64'))) fail('bad_signature', { fingerprint });

const linesSha = digest.digest('hex');
if (linesSha !== manifest.lines_sha256) fail('lines_sha256_mismatch', { expected: manifest.lines_sha256, actual: linesSha });
if (count !== manifest.count) fail('count_mismatch', { expected: manifest.count, actual: count });
if ((first?.seq ?? null) !== manifest.first_seq || (last?.seq ?? null) !== manifest.last_seq) fail('bounds_mismatch');
if ((first?.hash ?? null) !== manifest.first_hash || (last?.hash ?? null) !== manifest.last_hash) fail('bounds_mismatch');
if ((first?.prevHash ?? null) !== manifest.first_prev_hash) fail('bounds_mismatch');
if (manifest.contiguous && events.broken) fail('chain_break', events.broken);

process.stdout.write(
  JSON.stringify({
    ok: true,
    count,
    first_seq: manifest.first_seq,
    last_seq: manifest.last_seq,
    contiguous: manifest.contiguous,
    scope: manifest.scope,
    key_id: manifest.key_id,
    fingerprint,
    pinned: !!pinned,
  }) + '\n',
);
