import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { post, raw } from './support/http.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));

/** What a newcomer does after `npm ci && npm start`: paste the printed curl and get a recording. */
describe('the demo (npm start)', () => {
  let child: ChildProcess;
  let out = '';
  let url = '';
  let key = '';
  const dataDir = mkdtempSync(join(tmpdir(), 'custodian-demo-'));

  beforeAll(async () => {
    child = spawn(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', 'demo'], {
      cwd: ROOT,
      env: { ...process.env, PORT: '0', CUSTODIAN_DATA_DIR: dataDir, CUSTODIAN_LOG_LEVEL: 'warn' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    child.stdout!.on('data', (c: Buffer) => (out += c.toString()));
    child.stderr!.on('data', (c: Buffer) => (out += c.toString()));
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`demo did not start:\n${out}`)), 30_000);
      const check = setInterval(() => {
        const m = /custodian demo is up at (http:\/\/\S+)/.exec(out);
        const k = /Bearer (cst_demo_[A-Za-z0-9_-]+)/.exec(out);
        if (m && k) {
          clearInterval(check);
          clearTimeout(timer);
          url = m[1]!;
          key = k[1]!;
          resolve();
        }
      }, 50);
      child.once('exit', (code) => reject(new Error(`demo exited ${code}:\n${out}`)));
    });
  }, 60_000);

  afterAll(async () => {
    if (child && child.exitCode === null) {
      child.kill('SIGTERM');
      await new Promise((r) => child.once('exit', r));
    }
    rmSync(dataDir, { recursive: true, force: true });
  });

  it('prints curls that work: the brief request comes from Genesys Cloud, the G.729 Avaya recording as PCM WAV', async () => {
    expect(out).toContain('curl -sS');
    expect(out).toContain('"caller_id":"compliance_tool_user_01","target_recording_ref":"rec_5f3a2b1c9d8e7f6g5h4i3j2k1l"');
    const brief = await post({ url } as never, { request_id: 'audit_req_9928374', caller_id: 'compliance_tool_user_01', target_recording_ref: 'rec_5f3a2b1c9d8e7f6g5h4i3j2k1l', format_preference: 'wav', include_metadata: true, audit_log_id: 'log_20231027_001' }, key);
    expect(brief.status, brief.body.toString().slice(0, 300)).toBe(200);
    expect(brief.headers['x-recording-origin']).toBe('GENESYS_CLOUD');
    expect(brief.headers['content-type']).toBe('audio/wav');
    const res = await post({ url } as never, { request_id: 'demo_test_1', caller_id: 'compliance_tool_user_01', target_recording_ref: 'avaya_7001', format_preference: 'wav', include_metadata: true }, key);
    expect(res.status, res.body.toString().slice(0, 300)).toBe(200);
    expect(res.headers['content-type']).toBe('audio/wav');
    expect(res.headers['x-audio-codec']).toBe('g729');
    expect(res.headers['x-recording-origin']).toBe('LEGACY_ARCHIVE');
    expect(res.body.subarray(0, 4).toString()).toBe('RIFF');
  });

  it('resolves the brief example by call id, shows expiry and legal hold, and isolates the other tenant', async () => {
    const byCall = await post({ url } as never, { request_id: 'demo_test_2', caller_id: 'compliance_tool_user_01', target_recording_ref: '2023-10-27T14:30:00Z-8923', format_preference: 'json' }, key);
    expect(byCall.status).toBe(200);
    expect(JSON.parse(byCall.body.toString()).copies).toHaveLength(2);
    // Both copies exist; the policy serves the cloud one (from the Genesys Cloud simulator).
    const cloud = await post({ url } as never, { request_id: 'demo_test_6', caller_id: 'compliance_tool_user_01', target_recording_ref: '2023-10-27T14:30:00Z-8923', format_preference: 'original' }, key);
    expect(cloud.status, cloud.body.toString().slice(0, 300)).toBe(200);
    expect(cloud.headers['x-recording-origin']).toBe('GENESYS_CLOUD');
    // Archived in Genesys Cloud: a restore job, answered with 202 and a poll endpoint.
    const archived = await post({ url } as never, { request_id: 'demo_test_7', caller_id: 'compliance_tool_user_01', target_recording_ref: 'rec_archived_0002' }, key);
    expect(archived.status).toBe(202);
    const accepted = JSON.parse(archived.body.toString());
    expect(accepted).toMatchObject({ status: 202, message: 'Retrieval initiated', poll_endpoint: `/api/v1/recordings/status/${accepted.job_id}` });
    const status = await raw(`${url}${accepted.poll_endpoint}`, { headers: { authorization: `Bearer ${key}` } });
    expect(['queued', 'running']).toContain(JSON.parse(status.body.toString()).status);
    const expired = await post({ url } as never, { request_id: 'demo_test_3', caller_id: 'compliance_tool_user_01', target_recording_ref: 'avaya_1234' }, key);
    expect(expired.status).toBe(410);
    const held = await post({ url } as never, { request_id: 'demo_test_4', caller_id: 'compliance_tool_user_01', target_recording_ref: 'avaya_5678', format_preference: 'json' }, key);
    expect(held.headers['x-retention-status']).toBe('LEGAL_HOLD');
    const foreign = await post({ url } as never, { request_id: 'demo_test_5', caller_id: 'compliance_tool_user_01', target_recording_ref: 'other_0001' }, key);
    expect(foreign.status).toBe(404);
  });

  it('shuts down gracefully on SIGTERM', async () => {
    expect((await raw(`${url}/healthz`)).status).toBe(200);
    child.kill('SIGTERM');
    const code = await new Promise<number | null>((r) => child.once('exit', (c) => r(c)));
    expect(code).toBe(0);
  });
});
