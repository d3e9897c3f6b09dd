// Writes docs/ERRORS.md from the error catalogue (src/errors.ts): `npx tsx scripts/errors-doc.ts`.
// test/docs.test.ts fails when the committed file is out of date.
import { writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { ERRORS } from '../src/errors.js';

export function errorsDoc(): string {
  const rows = Object.entries(ERRORS).map(([code, e]) => `| \`${code}\` | ${e.status} | ${e.title} |`);
  return `# Errors

Every failure is an \`application/problem+json\` body (RFC 9457):

\`\`\`json
{"type":"https://custodian.dev/errors/recording.not_found","title":"Recording not found","status":404,
 "detail":"Recording not found","code":"recording.not_found","request_id":"9b1c…"}
\`\`\`

\`code\` is stable: tools may branch on it. \`detail\` is for people and may change. \`request_id\` is
also sent as \`X-Request-Id\` and names the request in the logs and the audit trail. Some errors carry
more members (\`errors\` for schema violations, \`codec\` for 415, \`size\` for 416) and headers
(\`Retry-After\` on 429, 503, 504 and \`source.bad_gateway\`, where asking again later can help, and
not on the other 502s, which describe the catalog or the stored object, nor on a \`source.bad_gateway\`
about one recording — an unknown fileState, no media link, a 4xx about its id — which will answer the same; \`X-Retention-Status\` on 410, \`Content-Range\` on 416,
\`WWW-Authenticate\` on 401, \`Allow\` on 405).

Every error response also writes an audit event: outcome \`denied\` for 401/403/404/410/429 and
for 409 \`hold.second_admin_required\` (the admin who asked for a hold's release confirming it
too: a refused attempt at lifting a hold, docs/AUDIT.md), \`failed\` otherwise. A failure after
the first byte of a stream cannot change the status any more: the connection is aborted instead,
and the audit event records the code. The exception: bytes Node's HTTP parser refuses before any
request exists (\`request.malformed\`, \`request.header_too_large\`, \`request.timeout\`) are answered and
logged but not audited — there is no principal, tenant or resource to record (docs/AUDIT.md).

This table is generated from \`src/errors.ts\` by \`npx tsx scripts/errors-doc.ts\`.

| code | status | meaning |
|---|---|---|
${rows.join('\n')}
`;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  writeFileSync(new URL('../docs/ERRORS.md', import.meta.url), errorsDoc());
}
