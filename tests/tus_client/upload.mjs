// Uploads a file with tus-js-client, as a browser app would (tests/vod_api.rs).
//   node upload.mjs first  ENDPOINT TOKEN FILE TITLE   sends the first half, then stops;
//                                                      prints the upload URL
//   node upload.mjs resume UPLOAD_URL TOKEN FILE TITLE resumes it to the end; prints
//                                                      the offset it resumed from and
//                                                      the Panocast-Asset header
import { readFileSync } from 'node:fs';
import { basename } from 'node:path';
import { Upload } from 'tus-js-client';

const [mode, url, token, file, title] = process.argv.slice(2);
const data = readFileSync(file);
const half = Math.ceil(data.length / 2);
const options = {
  headers: { Authorization: `Bearer ${token}` },
  metadata: { filename: basename(file), title, projection: 'equirect', visibility: 'public' },
  chunkSize: half,
  retryDelays: [],
  onError: (e) => { console.error(`tus error: ${e}`); process.exit(1); },
};
if (mode === 'first') {
  const upload = new Upload(data, {
    ...options,
    endpoint: url,
    onChunkComplete: () => {
      // Interrupted halfway: the first chunk is stored, the second never sent.
      upload.abort(false).then(() => { console.log(`URL ${upload.url}`); process.exit(0); });
    },
  });
  upload.start();
} else {
  let resumedFrom = null;
  const upload = new Upload(data, {
    ...options,
    uploadUrl: url,
    onProgress: (sent) => { if (resumedFrom === null) resumedFrom = sent; },
    onSuccess: (payload) => {
      const asset = payload?.lastResponse?.getHeader('Panocast-Asset') ?? '';
      console.log(`RESUMED ${resumedFrom}`);
      console.log(`ASSET ${asset}`);
      process.exit(0);
    },
  });
  upload.start();
}
