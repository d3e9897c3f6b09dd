import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type DemoProcess, ROOT, startDemo } from './support/demo-process.js';
import { post, raw } from './support/http.js';

/**
 * Production runs compiled JavaScript (docs/OPERATIONS.md): `tsc -p tsconfig.build.json` into
 * dist/, then `node dist/cli/main.js`, with no TypeScript loader. The demo, run that way, serves
 * a recording and the console (paths relative to the compiled files must still resolve).
 */
describe('the compiled gateway (dist/)', () => {
  let demo: DemoProcess;
  let url = '';
  let key = '';

  beforeAll(async () => {
    execFileSync(process.execPath, [join(ROOT, 'node_modules/typescript/bin/tsc'), '-p', 'tsconfig.build.json'], { cwd: ROOT, stdio: 'pipe' });
    expect(existsSync(join(ROOT, 'dist/cli/main.js'))).toBe(true);
    demo = await startDemo(['dist/cli/main.js', 'demo'], 60_000);
    ({ url, key } = demo);
  }, 120_000);

  afterAll(() => demo?.stop());

  it('serves a legacy G.729 recording as WAV and the console page', async () => {
    const res = await post({ url } as never, { request_id: 'dist_1', caller_id: 'compliance_tool_user_01', target_recording_ref: 'avaya_7001', format_preference: 'wav' }, key);
    expect(res.status, res.body.toString().slice(0, 300)).toBe(200);
    expect(res.headers['content-type']).toBe('audio/wav');
    expect(res.body.subarray(0, 4).toString()).toBe('RIFF');
    const page = await raw(`${url}/console/`);
    expect(page.status).toBe(200);
    expect(page.body.toString()).toContain('<html');
  });
});
