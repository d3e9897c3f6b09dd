#!/usr/bin/env node
// Verifies a custodian audit export offline (docs/AUDIT.md). Plain Node >= 18, no dependencies:
//
//   node verify-audit-export.mjs export.jsonl --pubkey pinned.pem      (or --pubkey=pinned.pem)
//
// The trusted public key is required: pinned.pem is the gateway's signing key obtained outside the
// export (public_key of GET /api/v1/audit/signing-key, checked against the fingerprint its operator
// publishes). The manifest carries a key too, but anyone who edits the export can re-sign it with
// their own, so that key proves nothing by itself and is never what the signature is checked with.
//
// Checks, streaming the file: every event's hash recomputed from its fields; the links between
// events (when the export is contiguous); the SHA-256 of every byte before the manifest line; the
// manifest's counts and bounds; its Ed25519 signature, with the trusted key (the manifest's key must
// be that key). Exit 0 when all hold, 1 at the first failure (one JSON line on stdout either way);
// 2 on usage errors (no key, a key that is not an Ed25519 public key, an unknown option) and on a
// file that cannot be read (the export or the key: missing, a directory, no permission): one line on
// stderr naming it. A file that cannot be read is no verdict on an export, so never exit 1.
import { createHash, createPublicKey, verify } from 'node:crypto';
import { createReadStream, readFileSync } from 'node:fs';

const HOW =
  'pass the export and the trusted key: node verify-audit-export.mjs export.jsonl --pubkey pinned.pem ' +
  '(pinned.pem: the public_key of GET /api/v1/audit/signing-key, scope audit:read, whose fingerprint matches the one the operator published)';

function usage(problem) {
  process.stderr.write(`verify-audit-export: ${problem}; ${HOW}\n`);
  process.exit(2);
}

/** A file that cannot be read: one line naming it and why (Node's own error would be a stack trace). */
function unreadable(what, path, e, hint) {
  const why = e.code === 'ENOENT' ? 'does not exist' : e.code === 'EISDIR' ? 'cannot be read: it is a directory' : `cannot be read (${e.code ?? e.message})`;
  process.stderr.write(`verify-audit-export: ${what} ${JSON.stringify(path)} ${why}${hint ? `; ${hint}` : ''}\n`);
  process.exit(2);
}

const files = [];
let pinned;
const argv = process.argv.slice(2);
for (let i = 0; i < argv.length; i++) {
  const a = argv[i];
  let value;
  if (a === '--pubkey') {
    value = argv[++i];
    if (value === undefined || value === '') usage('--pubkey needs a file');
  } else if (a.startsWith('--pubkey=')) {
    value = a.slice('--pubkey='.length);
    if (value === '') usage('--pubkey needs a file');
  } else if (a.startsWith('-')) {
    usage(`unknown option ${JSON.stringify(a)}`);
  } else {
    files.push(a);
    continue;
  }
  if (pinned !== undefined) usage('--pubkey given twice');
  pinned = value;
}
if (files.length !== 1) usage(files.length ? `one export at a time, got ${files.length}` : 'no export file given');
if (pinned === undefined) usage('no trusted key given (the key inside the export proves nothing by itself)');
const file = files[0];

let pinnedPem;
try {
  pinnedPem = readFileSync(pinned);
} catch (e) {
  // Where the key comes from, as for a missing --pubkey: a wrong path is often a key not yet fetched.
  unreadable('the trusted key (--pubkey)', pinned, e, HOW);
}
let pinnedKey;
try {
  pinnedKey = createPublicKey(pinnedPem);
} catch (e) {
  usage(`cannot read the trusted key ${JSON.stringify(pinned)} as a PEM public key (${e.code ?? e.message})`);
}
if (pinnedKey.asymmetricKeyType !== 'ed25519') usage(`the trusted key ${JSON.stringify(pinned)} is not an Ed25519 public key`);
const pinnedDer = pinnedKey.export({ type: 'spki', format: 'der' });

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
  // `null`, a number, an array: JSON, but not an event (and `null.type` would be a crash, not a verdict).
  if (e === null || typeof e !== 'object' || e.type !== 'event') fail('unexpected_line', { line: lineNo });
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
try {
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
} catch (e) {
  // Only the file system's errors (open, read) land here: every verdict on the content exits through fail().
  if (typeof e?.syscall !== 'string') throw e;
  unreadable('the export', file, e);
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
if (line?.type !== 'manifest' || manifest?.format !== 'custodian.audit-export.v1') fail('no_manifest');

// The signature, checked with the trusted key; the manifest's own key must be that key.
let key;
try {
  key = createPublicKey(manifest.public_key);
} catch {
  fail('key_not_pinned', { fingerprint: null });
}
const fingerprint = 'sha256:' + sha256(key.export({ type: 'spki', format: 'der' }));
if (!pinnedDer.equals(key.export({ type: 'spki', format: 'der' }))) fail('key_not_pinned', { fingerprint });
if (!verify(null, Buffer.from(line.manifest, 'utf8'), pinnedKey, Buffer.from(String(line.signature), 'base64'))) fail('bad_signature', { fingerprint });

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
    pinned: true,
  }) + '\n',
);
