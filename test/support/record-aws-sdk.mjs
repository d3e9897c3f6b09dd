/**
 * Preload (`--import`) that records which @aws-sdk packages a process imports, for
 * test/lazy-aws-sdk.test.ts: every resolved URL under /@aws-sdk/ is appended to the file named by
 * CUSTODIAN_TEST_AWS_SDK_LOG. The hook runs on the loader thread, so it writes the file itself
 * (synchronously, before the import goes on) rather than messaging this thread.
 *
 * Only ESM resolution is seen: the SDK's own require()s of its CommonJS dependencies are not, but
 * the first import of a package (ours) is, and that is the question.
 */
import { register } from 'node:module';

const file = process.env.CUSTODIAN_TEST_AWS_SDK_LOG;
if (file) register('./record-aws-sdk-hooks.mjs', import.meta.url, { data: { file } });
