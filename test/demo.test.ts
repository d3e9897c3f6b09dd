import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type DemoProcess, startDemo } from './support/demo-process.js';
import { post, raw } from './support/http.js';

/** What a newcomer does after `npm ci && npm start`: paste the printed curl and get a recording. */
describe('the demo (npm start)', () => {
  let demo: DemoProcess;
  let out = '';
  let url = '';
  let key = '';

  beforeAll(async () => {
    demo = await startDemo(['--import', 'tsx', 'src/cli/main.ts', 'demo']);
    ({ url, key } = demo);
    out = demo.output();
  }, 60_000);

  afterAll(() => demo?.stop());

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
    demo.child.kill('SIGTERM');
    const code = await new Promise<number | null>((r) => demo.child.once('exit', (c) => r(c)));
    expect(code).toBe(0);
  });
});
