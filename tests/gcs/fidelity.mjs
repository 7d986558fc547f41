// Google's own Node.js client (@google-cloud/storage) against the GCS test server (testkit/gcs_server).
//
//   GCS_STATE=/path/to/state.json GCS_BUCKET=bucket node tests/gcs/fidelity.mjs
//
// GCS_STATE is the server's state file (endpoint, static token, service-account key).
// Set GCE_METADATA_HOST=127.0.0.1:PORT (and a HOME without gcloud credentials) to also run
// the metadata-server (workload identity) client. Prints one JSON line per check and exits
// non-zero on the first mismatch.
//
// Known client behaviour worked around here: for an apiEndpoint outside googleapis.com,
// @google-cloud/storage 7.x starts streaming resumable uploads (bucket.upload / file.save /
// createWriteStream) with a bare gaxios client, i.e. WITHOUT an Authorization header
// (File.startResumableUpload_ does not pass useAuthWithCustomEndpoint on). The server, like
// Cloud Storage, answers that initiate with 401, so the clients below add the bearer token
// with a request interceptor. createResumableUpload() does pass it on and needs no help.

import {Storage, CRC32C} from '@google-cloud/storage';
import {OAuth2Client} from 'google-auth-library';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

const state = JSON.parse(fs.readFileSync(process.env.GCS_STATE, 'utf8'));
const BUCKET = process.env.GCS_BUCKET || 'archie-fidelity';
const ENDPOINT = state.endpoint;
const KIB = 1024;
const MIB = 1024 * KIB;
const work = fs.mkdtempSync(path.join(os.tmpdir(), 'gcs-fidelity-'));
const results = [];

function fail(msg, extra) {
  console.log(JSON.stringify({check: 'FAILED', message: msg, extra: extra ?? null}));
  fs.rmSync(work, {recursive: true, force: true});
  process.exit(1);
}

function expect(cond, msg, extra) {
  if (!cond) fail(msg, extra);
}

async function check(name, fn) {
  await control('DELETE', 'requests');
  const t0 = Date.now();
  let info;
  try {
    info = await fn();
  } catch (e) {
    fail(`${name}: ${e && e.stack ? e.stack : e}`, e && e.errors ? e.errors : undefined);
  }
  const line = {check: name, ok: true, ms: Date.now() - t0, ...(info || {})};
  results.push(line);
  console.log(JSON.stringify(line));
}

async function control(method, op, body) {
  const r = await fetch(`${ENDPOINT}/_test/${op}`, {
    method,
    headers: body ? {'Content-Type': 'application/json'} : {},
    body: body ? JSON.stringify(body) : undefined,
  });
  if (r.status !== 200) fail(`control ${op} -> ${r.status}`);
  return r.json();
}

async function requestLog() {
  return (await control('GET', 'requests?clear=1')).requests;
}

function pattern(n, seed) {
  // Deterministic, non-repeating-looking bytes.
  const out = Buffer.alloc(n);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    x ^= x << 13; x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5; x >>>= 0;
    out[i] = x & 0xff;
  }
  return out;
}

function md5b64(buf) {
  return crypto.createHash('md5').update(buf).digest('base64');
}

function crc32cb64(buf) {
  const c = new CRC32C();
  c.update(buf);
  return c.toString();
}

function authInterceptor(headerValue) {
  return {
    request: reqOpts => {
      reqOpts.headers = reqOpts.headers || {};
      if (!reqOpts.headers.Authorization && !reqOpts.headers.authorization) {
        reqOpts.headers.Authorization = headerValue;
      }
      return reqOpts;
    },
  };
}

async function expectError(promise, code, what) {
  try {
    await promise;
  } catch (e) {
    expect(e.code === code, `${what}: expected error code ${code}, got ${e.code} (${e.message})`);
    return e;
  }
  fail(`${what}: expected an error ${code}, the call succeeded`);
}

// --- client A: a plain OAuth2 access token (the server's static token)

// A fresh client per use where retries matter: an upload without a generation precondition
// switches retries off by setting maxRetries = 0 on the client's shared retryOptions object.
function staticTokenClient() {
  const oauth = new OAuth2Client();
  oauth.setCredentials({access_token: state.static_token, expiry_date: Date.now() + 3600 * 1000});
  const s = new Storage({
    apiEndpoint: ENDPOINT,
    projectId: state.project,
    authClient: oauth,
    useAuthWithCustomEndpoint: true,
    retryOptions: {autoRetry: true, maxRetries: 5, retryDelayMultiplier: 1.1, maxRetryDelay: 2},
  });
  s.interceptors.push(authInterceptor('Bearer ' + state.static_token));
  return s;
}
const storage = staticTokenClient();
const bucket = storage.bucket(BUCKET);

const big = pattern(5 * MIB + 12345, 7);
const bigPath = path.join(work, 'five.bin');
fs.writeFileSync(bigPath, big);
const small = pattern(300 * KIB + 7, 11);
const PFX = 'fidelity/';

await check('bucket.getMetadata', async () => {
  const [meta] = await bucket.getMetadata();
  expect(meta.name === BUCKET && meta.kind === 'storage#bucket', 'bucket metadata', meta);
  return {location: meta.location};
});

await check('upload resumable, chunkSize 1 MiB (5 MiB + 12345 B)', async () => {
  const [file, meta] = await bucket.upload(bigPath, {
    destination: PFX + 'resumable.bin',
    resumable: true,
    chunkSize: 4 * 256 * KIB,
    metadata: {contentType: 'application/x-archie-test', metadata: {origin: 'fidelity', n: '1'}},
  });
  expect(file.name === PFX + 'resumable.bin', 'file name');
  expect(Number(meta.size) === big.length, 'size', meta);
  expect(meta.md5Hash === md5b64(big), 'md5Hash', meta);
  expect(meta.crc32c === crc32cb64(big), 'crc32c', meta);
  const log = await requestLog();
  const puts = log.filter(r => r.method === 'PUT' && r.path.startsWith('/upload/'));
  const partial = puts.filter(r => r.status === 308);
  expect(puts.length === 6 && partial.length === 5, 'expected 5 x 308 then a final 200', puts);
  expect(puts.every(r => /^bytes \d+-\d+\/(\*|\d+)$/.test(r.headers['Content-Range'])), 'Content-Range form', puts);
  return {chunk_puts: puts.length, status_308: partial.length, content_ranges: puts.map(r => r.headers['Content-Range'])};
});

await check('upload simple (resumable: false -> multipart)', async () => {
  const file = bucket.file(PFX + 'simple.txt');
  await file.save(small, {resumable: false, contentType: 'text/plain', metadata: {metadata: {k: 'v'}}});
  const log = await requestLog();
  const up = log.find(r => r.method === 'POST' && r.path.startsWith('/upload/'));
  expect(up && up.query.uploadType === 'multipart' && up.status === 200, 'multipart upload seen', log);
  const [meta] = await file.getMetadata();
  expect(meta.contentType === 'text/plain' && meta.metadata.k === 'v', 'simple metadata', meta);
  expect(meta.md5Hash === md5b64(small) && meta.crc32c === crc32cb64(small), 'simple hashes', meta);
  return {uploadType: up.query.uploadType, content_type: up.headers['Content-Type'].split(';')[0]};
});

await check('storage class and KMS key on a multipart upload; a metadata key set and removed with PATCH', async () => {
  const key = 'projects/p/locations/global/keyRings/r/cryptoKeys/k';
  const file = bucket.file('kms/cold.txt', {kmsKeyName: key});  // outside PFX: the listing check counts PFX
  await file.save(small, {resumable: false, metadata: {storageClass: 'COLDLINE'}});
  const [meta] = await bucket.file('kms/cold.txt').getMetadata();
  expect(meta.storageClass === 'COLDLINE', 'storage class kept', meta);
  expect(meta.kmsKeyName === key + '/cryptoKeyVersions/1', 'KMS key version named', meta);
  await bucket.file('kms/cold.txt').setMetadata({metadata: {'archie-tags': 'a=1'}});
  const [tagged] = await bucket.file('kms/cold.txt').getMetadata();
  expect(tagged.metadata['archie-tags'] === 'a=1', 'metadata key set', tagged);
  await bucket.file('kms/cold.txt').setMetadata({metadata: {'archie-tags': null}});
  const [cleared] = await bucket.file('kms/cold.txt').getMetadata();
  expect(!cleared.metadata || !('archie-tags' in cleared.metadata), 'metadata key removed by null', cleared);
  return {storageClass: meta.storageClass, kmsKeyName: meta.kmsKeyName};
});

await check('download whole (client validates X-Goog-Hash crc32c)', async () => {
  const [data] = await bucket.file(PFX + 'resumable.bin').download();
  expect(Buffer.compare(data, big) === 0, 'whole download bytes');
  return {bytes: data.length};
});

await check('download ranged (start..end inclusive, and start..EOF)', async () => {
  const f = bucket.file(PFX + 'resumable.bin');
  const [part] = await f.download({start: 1000, end: 300000});
  expect(Buffer.compare(part, big.subarray(1000, 300001)) === 0, 'ranged bytes 1000-300000');
  const tailStart = big.length - 777;
  const [tail] = await f.download({start: tailStart});
  expect(Buffer.compare(tail, big.subarray(tailStart)) === 0, 'ranged tail bytes');
  const log = await requestLog();
  const ranged = log.filter(r => r.status === 206).map(r => r.headers.Range);
  expect(ranged.length === 2, 'two 206 answers', log);
  return {ranges: ranged};
});

await check('getMetadata (object resource fields)', async () => {
  const [m] = await bucket.file(PFX + 'resumable.bin').getMetadata();
  expect(m.kind === 'storage#object' && m.name === PFX + 'resumable.bin' && m.bucket === BUCKET, 'identity', m);
  expect(m.size === String(big.length), 'size is a decimal string', m);
  expect(m.contentType === 'application/x-archie-test', 'contentType', m);
  expect(m.metadata && m.metadata.origin === 'fidelity' && m.metadata.n === '1', 'custom metadata', m);
  expect(m.md5Hash === md5b64(big) && m.crc32c === crc32cb64(big), 'hashes', m);
  expect(/^\d+$/.test(m.generation) && m.metageneration === '1', 'generation/metageneration', m);
  expect(typeof m.etag === 'string' && !isNaN(Date.parse(m.timeCreated)) && !isNaN(Date.parse(m.updated)), 'etag/times', m);
  return {generation: m.generation, etag: m.etag};
});

await check('list with prefix, delimiter and paging', async () => {
  for (const n of ['a/1', 'a/2', 'b/1', 'c']) {
    await bucket.file(PFX + 'tree/' + n).save(Buffer.from(n), {resumable: false});
  }
  const [all] = await bucket.getFiles({prefix: PFX});
  const names = all.map(f => f.name).sort();
  const want = [PFX + 'resumable.bin', PFX + 'simple.txt', PFX + 'tree/a/1', PFX + 'tree/a/2', PFX + 'tree/b/1', PFX + 'tree/c'];
  expect(JSON.stringify(names) === JSON.stringify(want), 'prefix listing', names);
  const [, , resp] = await bucket.getFiles({prefix: PFX + 'tree/', delimiter: '/', autoPaginate: false});
  expect(JSON.stringify(resp.prefixes) === JSON.stringify([PFX + 'tree/a/', PFX + 'tree/b/']), 'prefixes', resp);
  expect(resp.items.length === 1 && resp.items[0].name === PFX + 'tree/c', 'items beside prefixes', resp);
  const paged = [];
  let query = {prefix: PFX + 'tree/', maxResults: 2, autoPaginate: false};
  let pages = 0;
  while (query) {
    const [files, next] = await bucket.getFiles(query);
    paged.push(...files.map(f => f.name));
    query = next;
    pages++;
  }
  expect(pages === 2 && paged.length === 4, 'paged listing', paged);
  return {objects: names.length, pages, prefixes: resp.prefixes};
});

await check('precondition ifGenerationMatch=0 on an existing object -> 412', async () => {
  const f = bucket.file(PFX + 'simple.txt');
  await expectError(f.save(Buffer.from('x'), {resumable: false, preconditionOpts: {ifGenerationMatch: 0}}), 412, 'save ifGenerationMatch=0');
  const [m] = await f.getMetadata();
  await expectError(f.delete({ifGenerationMatch: Number(m.generation) + 1}), 412, 'delete wrong generation');
  return {};
});

await check('resumable upload survives a connection cut mid-chunk', async () => {
  await control('POST', 'fail-chunks', {count: 1, mode: 'drop', after_bytes: 700 * KIB});
  const data = pattern(3 * MIB + 99, 21);
  const p = path.join(work, 'cut.bin');
  fs.writeFileSync(p, data);
  // The client retries uploads only when they are idempotent: ifGenerationMatch=0 makes it so.
  const [, meta] = await staticTokenClient().bucket(BUCKET).upload(p, {destination: PFX + 'cut.bin', resumable: true, chunkSize: MIB,
                                           preconditionOpts: {ifGenerationMatch: 0}});
  expect(meta.md5Hash === md5b64(data) && Number(meta.size) === data.length, 'cut upload result', meta);
  const [back] = await bucket.file(PFX + 'cut.bin').download();
  expect(Buffer.compare(back, data) === 0, 'cut upload bytes');
  const log = await requestLog();
  const puts = log.filter(r => r.method === 'PUT');
  const queries = puts.filter(r => (r.headers['Content-Range'] || '').startsWith('bytes */'));
  expect(puts.some(r => r.status === 'dropped') && queries.length >= 1, 'a dropped chunk then a status query', puts);
  return {puts: puts.map(r => `${r.headers['Content-Range']} -> ${r.status}`)};
});

await check('resumable upload retries a 503 chunk', async () => {
  await control('POST', 'fail-chunks', {count: 1, mode: '503'});
  const data = pattern(2 * MIB + 5, 33);
  const f = staticTokenClient().bucket(BUCKET).file(PFX + 'retry503.bin');
  await f.save(data, {resumable: true, chunkSize: MIB, preconditionOpts: {ifGenerationMatch: 0}});
  const [meta] = await f.getMetadata();
  expect(meta.md5Hash === md5b64(data) && meta.crc32c === crc32cb64(data), 'retry503 result', meta);
  const log = await requestLog();
  const puts = log.filter(r => r.method === 'PUT');
  expect(puts.some(r => r.status === 503), 'a 503 chunk answer', puts);
  return {puts: puts.map(r => `${r.headers['Content-Range']} -> ${r.status}`)};
});

await check('createResumableUpload session URI, then unauthenticated chunk PUTs', async () => {
  // No interceptor here: createResumableUpload authenticates the initiate by itself, and the
  // chunk PUTs to the session URI go out without credentials, which Cloud Storage accepts.
  const oauth = new OAuth2Client();
  oauth.setCredentials({access_token: state.static_token, expiry_date: Date.now() + 3600 * 1000});
  const plain = new Storage({apiEndpoint: ENDPOINT, projectId: state.project, authClient: oauth,
                             useAuthWithCustomEndpoint: true});
  const f = plain.bucket(BUCKET).file(PFX + 'session.bin');
  const [uri] = await f.createResumableUpload({metadata: {contentType: 'application/octet-stream'}});
  expect(/[?&]upload_id=/.test(uri), 'session URI has upload_id', uri);
  const data = pattern(MIB + 3 * 256 * KIB + 1, 44);
  await new Promise((resolve, reject) => {
    const ws = f.createWriteStream({uri, resumable: true, chunkSize: 2 * 256 * KIB});
    ws.on('error', reject).on('finish', resolve);
    ws.end(data);
  });
  const [back] = await f.download();
  expect(Buffer.compare(back, data) === 0, 'session upload bytes');
  const log = await requestLog();
  const init = log.filter(r => r.method === 'POST' && r.query.uploadType === 'resumable');
  const puts = log.filter(r => r.method === 'PUT');
  expect(init.length === 1 && init[0].headers.Authorization, 'authenticated initiate', init);
  expect(puts.length >= 3 && puts.every(r => !r.headers.Authorization), 'unauthenticated session PUTs', puts);
  return {session_puts: puts.map(r => `${r.headers['Content-Range']} -> ${r.status}`)};
});

await check('delete, exists, delete again -> 404', async () => {
  const f = bucket.file(PFX + 'simple.txt');
  await f.delete();
  const [exists] = await f.exists();
  expect(exists === false, 'deleted object still exists');
  await expectError(f.delete(), 404, 'second delete');
  await expectError(f.download(), 404, 'download of a deleted object');
  return {};
});

await check('object versioning: noncurrent generations, versions listing, get/patch/delete by generation', async () => {
  // A bucket of its own: the listing checks above and below count objects in BUCKET.
  const [vb] = await storage.createBucket(BUCKET + '-versions');
  const [before] = await vb.getMetadata();
  const [after] = await vb.setMetadata({versioning: {enabled: true}});
  expect(after.versioning && after.versioning.enabled === true, 'versioning enabled', after);
  expect(Number(after.metageneration) === Number(before.metageneration) + 1, 'bucket metageneration bumped', after);
  const name = 'versioned.txt';
  const f = vb.file(name);
  await f.save('first version', {resumable: false});
  const [m1] = await f.getMetadata();
  await f.save('second', {resumable: false});
  const [m2] = await f.getMetadata();
  expect(Number(m2.generation) > Number(m1.generation), 'a new generation', [m1, m2]);

  const gens = async () => (await vb.getFiles({versions: true}))[0];
  let files = await gens();
  expect(files.length === 2 && files.every(x => x.name === name), 'both generations listed', files.map(x => x.metadata));
  expect(files[0].generation === Number(m1.generation) && files[1].generation === Number(m2.generation),
         'generation ascending, each File scoped to its generation', files.map(x => x.generation));
  expect(!isNaN(Date.parse(files[0].metadata.timeDeleted)) && files[1].metadata.timeDeleted === undefined,
         'timeDeleted on the noncurrent generation only', files.map(x => x.metadata));
  const [live] = await vb.getFiles();
  expect(live.length === 1 && live[0].metadata.generation === m2.generation, 'only the live one without versions', live);

  const [oldBytes] = await vb.file(name, {generation: m1.generation}).download();
  expect(oldBytes.toString() === 'first version', 'old generation bytes', oldBytes.toString());
  const [tail] = await files[0].download({start: 6});
  expect(tail.toString() === 'version', 'ranged read of the old generation', tail.toString());
  const [liveBytes] = await f.download();
  expect(liveBytes.toString() === 'second', 'live bytes', liveBytes.toString());

  const [patched] = await files[0].setMetadata({metadata: {note: 'old'}});
  expect(patched.generation === m1.generation && patched.metageneration === '2' && patched.metadata.note === 'old',
         'PATCH of the noncurrent generation', patched);
  const [liveMeta] = await f.getMetadata();
  expect(liveMeta.metageneration === '1' && !liveMeta.metadata, 'the live generation untouched', liveMeta);

  // Pages of one: the two generations of one name on two pages.
  const paged = [];
  let query = {versions: true, maxResults: 1, autoPaginate: false};
  while (query) {
    const [page, next] = await vb.getFiles(query);
    paged.push(...page.map(x => x.generation));
    query = next;
  }
  expect(JSON.stringify(paged) === JSON.stringify([Number(m1.generation), Number(m2.generation)]), 'paged versions',
         paged);

  await vb.file(name, {generation: m1.generation}).delete();
  const [oldExists] = await vb.file(name, {generation: m1.generation}).exists();
  expect(!oldExists, 'deleted generation is gone');
  files = await gens();
  expect(files.length === 1 && files[0].generation === Number(m2.generation), 'one generation left',
         files.map(x => x.metadata));

  await f.delete();   // no generation: the live object becomes noncurrent
  const [liveExists] = await f.exists();
  expect(!liveExists, 'no live object after delete');
  files = await gens();
  expect(files.length === 1 && files[0].metadata.timeDeleted, 'the deleted live object kept as noncurrent',
         files.map(x => x.metadata));
  const [kept] = await vb.file(name, {generation: m2.generation}).download();
  expect(kept.toString() === 'second', 'noncurrent bytes after delete', kept.toString());
  await expectError(vb.delete(), 409, 'delete of a bucket holding a noncurrent generation');
  await files[0].delete();
  expect((await gens()).length === 0, 'no generations left');
  await vb.delete();

  const log = await requestLog();
  const lists = log.filter(r => r.kind === 'object.list' && r.query.versions === 'true');
  const byGen = log.filter(r => r.query.generation !== undefined).map(r => `${r.method} ${r.kind} -> ${r.status}`);
  expect(log.some(r => r.method === 'PATCH' && r.kind === 'bucket.patch' && r.status === 200), 'bucket PATCH seen', log);
  return {generations: [m1.generation, m2.generation], versions_lists: lists.length, by_generation: byGen};
});

await check('wrong bearer token -> 401', async () => {
  const bad = new OAuth2Client();
  bad.setCredentials({access_token: 'ya29.not-a-token', expiry_date: Date.now() + 3600 * 1000});
  const s = new Storage({apiEndpoint: ENDPOINT, projectId: state.project, authClient: bad,
                         useAuthWithCustomEndpoint: true, retryOptions: {autoRetry: false}});
  const e = await expectError(s.bucket(BUCKET).file(PFX + 'resumable.bin').getMetadata(), 401, 'bad token');
  return {message: e.message};
});

// --- client B: the generated service-account key (self-signed JWT bearer tokens)

await check('service-account key (self-signed JWT with scope)', async () => {
  const sa = new Storage({
    apiEndpoint: ENDPOINT,
    projectId: state.project,
    keyFilename: state.service_account_key,
    useAuthWithCustomEndpoint: true,
  });
  // Sign JWTs locally (scope claim) instead of exchanging them at Google's token URL, which
  // gtoken hard-codes (it ignores the key's token_uri). GoogleAuth copies this onto its JWT client.
  sa.authClient.useJWTAccessWithScope = true;
  const headers = await sa.authClient.getRequestHeaders(ENDPOINT);
  sa.interceptors.push(authInterceptor(headers.Authorization));
  const data = pattern(700 * KIB, 55);
  const f = sa.bucket(BUCKET).file(PFX + 'sa.bin');
  await f.save(data, {resumable: false});
  const [back] = await f.download();
  expect(Buffer.compare(back, data) === 0, 'sa bytes');
  await f.save(data, {resumable: true, chunkSize: 256 * KIB});
  const log = await requestLog();
  // Session-URI PUTs carry the header too but are not authenticated (principal null).
  const jwtCalls = log.filter(r => (r.headers.Authorization || '').startsWith('Bearer eyJ') && r.principal);
  expect(jwtCalls.length >= 3 && jwtCalls.every(r => r.principal === state.service_account_email),
         'JWT-authorized calls by the service account', log);
  expect(log.every(r => !r.principal || r.principal === state.service_account_email), 'only the SA', log);
  return {jwt_calls: jwtCalls.length, principal: state.service_account_email};
});

// --- client C: workload identity through the GCE metadata server

if (process.env.GCE_METADATA_HOST) {
  await check('metadata-server credentials (GCE_METADATA_HOST)', async () => {
    const wi = new Storage({apiEndpoint: ENDPOINT, projectId: state.project, useAuthWithCustomEndpoint: true});
    const [files] = await wi.bucket(BUCKET).getFiles({prefix: PFX + 'tree/'});
    expect(files.length === 4, 'wi listing', files.map(f => f.name));
    const [data] = await wi.bucket(BUCKET).file(PFX + 'resumable.bin').download({start: 0, end: 9});
    expect(Buffer.compare(data, big.subarray(0, 10)) === 0, 'wi ranged bytes');
    const log = await requestLog();
    const tokenCalls = log.filter(r => r.path.endsWith('/service-accounts/default/token'));
    expect(tokenCalls.length >= 1 && tokenCalls[0].headers['Metadata-Flavor'] === 'Google', 'metadata token call', log);
    const principals = [...new Set(log.filter(r => r.path.startsWith('/storage/')).map(r => r.principal))];
    expect(principals.length === 1 && principals[0] === state.metadata_email, 'calls made as the workload SA', principals);
    return {token_calls: tokenCalls.length, principal: principals[0]};
  });
}

fs.rmSync(work, {recursive: true, force: true});
console.log(JSON.stringify({check: 'ALL', ok: true, count: results.length}));
