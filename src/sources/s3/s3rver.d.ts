// s3rver 3.x ships no types; this covers only what simulator.ts uses.
declare module 's3rver' {
  import type { IncomingMessage, ServerResponse } from 'node:http';

  interface S3rverOptions {
    silent?: boolean;
    directory?: string;
    configureBuckets?: { name: string; configs?: (string | Buffer)[] }[];
  }
  class S3rver {
    constructor(options?: S3rverOptions);
    /** Creates the buckets named in `configureBuckets` without going through the S3 API. */
    configureBuckets(): Promise<void>;
    /** The request listener, for mounting on an http.Server of one's own. */
    callback(): (req: IncomingMessage, res: ServerResponse) => void;
  }
  export = S3rver;
}
