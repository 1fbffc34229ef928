// Real-client scenario: the TypeScript `weaviate-client` 3.x (gRPC on Node) against clipgate.
//
// The v3 client queries (nearText, nearImage, hybrid, aggregate) and imports (insertMany) over
// gRPC `weaviate.v1.Weaviate`, checks gRPC health at connect unless `skipInitChecks`, and creates
// collections over REST (../../../shared/spec/clients.md). This is the Python v4 scenario
// (tests/clients/python/scenario_v4.py) written with the TypeScript client.
//
// Usage:
//   CLIPGATE_URL=http://127.0.0.1:8080 CLIPGATE_GRPC=127.0.0.1:50051 node scenario.mjs [--client-vectors]
// Exit 0 = all checks passed; the last line is `ts-v3 scenario: N passed, M failed`.
// `--client-vectors` (or SCENARIO_CLIENT_VECTORS=1): the target has no multi2vec-clip; the
// collection is self-provided and text/image queries are sent as the vectors the module computes.
//
// Expected orders come from fixtures/reference/clip.json (reference vectors of the fixture model,
// computed with PyTorch, L2-normalized as the inference container returns them), independently of
// clipgate: object vector = mean(caption, image) (spec §5.3), moves per §3.2, cosine ranking.

import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createHash } from 'node:crypto';
import weaviate from 'weaviate-client';

const HERE = dirname(fileURLToPath(import.meta.url));
const ROOT = join(HERE, '..', '..', '..');
const IMAGES = join(ROOT, 'fixtures', 'images');
const COLLECTION = 'ClientTsV3Shapes';
const SHAPES = [
  'blue-circle', 'blue-square', 'brown-hexagon', 'green-triangle', 'orange-diamond',
  'pink-heart', 'purple-cross', 'red-circle', 'red-square', 'yellow-star',
];

const failures = [];
let checked = 0;
function record(label, ok, shown, failure) {
  checked += 1;
  console.log(`${(ok ? 'ok' : 'FAIL').padEnd(5)} ts-v3  ${label}: ${JSON.stringify(shown)}`);
  if (!ok) failures.push(`${label}: ${failure}`);
}

// uuid v5 (URL namespace), the same ids the Python scenarios derive.
function uuid5(name) {
  const ns = Buffer.from('6ba7b8119dad11d180b400c04fd430c8', 'hex');
  const h = createHash('sha1').update(Buffer.concat([ns, Buffer.from(name)])).digest();
  h[6] = (h[6] & 0x0f) | 0x50;
  h[8] = (h[8] & 0x3f) | 0x80;
  const x = h.subarray(0, 16).toString('hex');
  return `${x.slice(0, 8)}-${x.slice(8, 12)}-${x.slice(12, 16)}-${x.slice(16, 20)}-${x.slice(20)}`;
}
const shapeId = (s) => uuid5(`clipgate-client-ts-v3/${s}`);
const NAME_OF = Object.fromEntries(SHAPES.map((s) => [shapeId(s), s]));
const caption = (s) => {
  const [colour, shape] = s.split('-');
  return `${'aeiou'.includes(colour[0]) ? 'an' : 'a'} ${colour} ${shape}`;
};
const b64 = (s) => readFileSync(join(IMAGES, `${s}.png`)).toString('base64');

// ------------------------------------------------------------ independent expectations
const REF = JSON.parse(readFileSync(join(ROOT, 'fixtures', 'reference', 'clip.json'), 'utf8'));
const TEXT_VEC = Object.fromEntries(REF.texts.map((t) => [t.text, t.vector]));
const IMAGE_VEC = Object.fromEntries(
  REF.images.filter((i) => !i.file.includes('/formats/')).map((i) => [i.file.split('/').pop().replace(/\.png$/, ''), i.vector]),
);
const mean = (vs) => vs[0].map((_, i) => vs.reduce((s, v) => s + v[i], 0) / vs.length);
const moveTo = (s, t, f) => s.map((a, i) => a * (1 - f * 0.5) + t[i] * (f * 0.5));
const moveAway = (s, t, f) => s.map((a, i) => a + f * 0.5 * (a - t[i]));
const norm = (v) => Math.sqrt(v.reduce((s, x) => s + x * x, 0));
const cosDist = (a, b) => 1 - a.reduce((s, x, i) => s + x * b[i], 0) / (norm(a) * norm(b));
const OBJECT_VEC = Object.fromEntries(SHAPES.map((s) => [s, mean([TEXT_VEC[caption(s)], IMAGE_VEC[s]])]));
const ranking = (q) => [...SHAPES].sort((a, b) => cosDist(q, OBJECT_VEC[a]) - cosDist(q, OBJECT_VEC[b]));
const distances = (q) => SHAPES.map((s) => cosDist(q, OBJECT_VEC[s])).sort((a, b) => a - b);

const names = (res) => res.objects.map((o) => NAME_OF[o.uuid] ?? o.uuid);
function checkOrder(label, got, want, n = 3) {
  const ok = JSON.stringify(got.slice(0, n)) === JSON.stringify(want.slice(0, n));
  record(label, ok, got.slice(0, n + 1), `expected ${JSON.stringify(want.slice(0, n))} first, got ${JSON.stringify(got)}`);
}

// ------------------------------------------------------------ scenario
const args = process.argv.slice(2);
const clientVectors = args.includes('--client-vectors') || process.env.SCENARIO_CLIENT_VECTORS === '1';
const url = new URL(process.env.CLIPGATE_URL ?? 'http://127.0.0.1:8080');
const [grpcHost, grpcPort] = (process.env.CLIPGATE_GRPC ?? '127.0.0.1:50051').split(':');

// `collection.config.get()` parses the full class (every server default Weaviate fills in:
// invertedIndexConfig, replicationConfig, shardingConfig, the hnsw config) and reports the
// vectorizer as multi2vec-clip with its fields; `listAll()` parses GET /v1/schema;
// `config.update()` round-trips the class through PUT.
async function checkConfig(client, shapes) {
  const wantVectorizer = clientVectors ? 'none' : 'multi2vec-clip';
  let cfg;
  try {
    cfg = await shapes.config.get();
  } catch (e) {
    record('config.get()', false, String(e), e?.stack ?? String(e));
    return;
  }
  const named = cfg.vectorizers?.default;
  record('config.get() vectorizer', named?.vectorizer?.name === wantVectorizer, named?.vectorizer?.name, `expected ${wantVectorizer}`);
  if (!clientVectors) {
    const c = named?.vectorizer?.config ?? {};
    const fields = { imageFields: c.imageFields, textFields: c.textFields };
    const wantFields = { imageFields: ['image'], textFields: ['text'] };
    record('config.get() clip fields', JSON.stringify(fields) === JSON.stringify(wantFields), fields, `expected ${JSON.stringify(wantFields)}`);
  }
  const index = [named?.indexType, named?.indexConfig?.distance];
  record('config.get() vector index', index[0] === 'hnsw' && index[1] === 'cosine', index, 'expected an hnsw index with cosine distance');
  const props = cfg.properties.map((p) => [p.name, p.dataType]);
  const wantProps = [['text', 'text'], ['image', 'blob']];
  record('config.get() properties', JSON.stringify(props) === JSON.stringify(wantProps), props, `expected ${JSON.stringify(wantProps)}`);
  const defaults = [cfg.invertedIndex.bm25.b, cfg.invertedIndex.bm25.k1, cfg.replication.factor, cfg.sharding.virtualPerPhysical];
  record('config.get() server defaults', JSON.stringify(defaults) === JSON.stringify([0.75, 1.2, 1, 128]), defaults,
    'expected bm25 b 0.75 k1 1.2, replication factor 1, 128 virtual shards');
  let listed;
  try {
    const all = await client.collections.listAll();
    listed = all.find((c) => c.name === COLLECTION)?.vectorizers?.default?.vectorizer?.name;
  } catch (e) {
    listed = String(e);
  }
  record('listAll() vectorizer', listed === wantVectorizer, listed, `expected ${wantVectorizer}`);
  let updated;
  try {
    await shapes.config.update({ invertedIndex: weaviate.reconfigure.invertedIndex({ bm25b: 0.7 }) });
    const after = await shapes.config.get();
    updated = [after.invertedIndex.bm25.b, after.vectorizers?.default?.vectorizer?.name];
  } catch (e) {
    updated = String(e);
  }
  record('config.update() bm25 b, vectorizer kept', JSON.stringify(updated) === JSON.stringify([0.7, wantVectorizer]), updated,
    `expected [0.7, ${wantVectorizer}]`);
}

async function run(client) {
  record('connect (init checks on)', await client.isReady(), true, 'not ready');
  if (await client.collections.exists(COLLECTION)) await client.collections.delete(COLLECTION);
  const vectorizers = clientVectors
    ? weaviate.configure.vectors.selfProvided()
    : weaviate.configure.vectors.multi2VecClip({ imageFields: ['image'], textFields: ['text'] });
  await client.collections.create({
    name: COLLECTION,
    properties: [
      { name: 'text', dataType: 'text' },
      { name: 'image', dataType: 'blob' },
    ],
    vectorizers,
  });
  try {
    const shapes = client.collections.get(COLLECTION);
    const stored = await (await fetch(new URL(`/v1/schema/${COLLECTION}`, url))).json();
    const shown = Object.fromEntries(
      Object.entries(stored.vectorConfig ?? {}).map(([n, c]) => [n, Object.keys(c.vectorizer ?? {})]),
    );
    const want = { default: [clientVectors ? 'none' : 'multi2vec-clip'] };
    record('schema reads back the vectorizer', JSON.stringify(shown) === JSON.stringify(want), shown, `expected ${JSON.stringify(want)}`);
    await checkConfig(client, shapes);

    const res = await shapes.data.insertMany(
      SHAPES.map((s) => ({
        id: shapeId(s),
        properties: { text: caption(s), image: b64(s) },
        ...(clientVectors ? { vectors: { default: OBJECT_VEC[s] } } : {}),
      })),
    );
    record('insertMany', !res.hasErrors, Object.keys(res.uuids).length, `errors: ${JSON.stringify(res.errors)}`);
    const total = (await shapes.aggregate.overAll()).totalCount;
    record('aggregate overAll totalCount', total === SHAPES.length, total, `expected ${SHAPES.length}`);

    const opts = { limit: 10, returnMetadata: ['distance'] };
    const nearText = (concepts, q, moves = {}) =>
      clientVectors ? shapes.query.nearVector(q, opts) : shapes.query.nearText(concepts, { ...opts, ...moves });

    for (const text of ['a red circle', 'a yellow star', 'a blue square']) {
      const q = TEXT_VEC[text];
      checkOrder(`nearText '${text}'`, names(await nearText(text, q)), ranking(q));
    }
    let q = moveTo(TEXT_VEC['a pink heart'], TEXT_VEC['a purple cross'], 1);
    checkOrder('nearText moveTo concepts',
      names(await nearText('a pink heart', q, { moveTo: { force: 1, concepts: ['a purple cross'] } })), ranking(q));
    q = moveTo(TEXT_VEC['a yellow star'], OBJECT_VEC['blue-circle'], 1);
    checkOrder('nearText moveTo an object',
      names(await nearText('a yellow star', q, { moveTo: { force: 1, objects: [shapeId('blue-circle')] } })), ranking(q));
    q = moveAway(moveTo(TEXT_VEC['a pink heart'], TEXT_VEC['a purple cross'], 1), TEXT_VEC['a pink heart'], 1);
    checkOrder('nearText moveTo + moveAway',
      names(await nearText('a pink heart', q, {
        moveTo: { force: 1, concepts: ['a purple cross'] },
        moveAway: { force: 1, concepts: ['a pink heart'] },
      })), ranking(q));

    // The image goes as a Buffer: the client stats a string argument as a file path first and a
    // base64 text containing '/' fails there with ENOENT (weaviate-client 3.14 utils/base64.js).
    for (const s of ['red-circle', 'green-triangle']) {
      const iq = IMAGE_VEC[s];
      const r = clientVectors ? await shapes.query.nearVector(iq, opts) : await shapes.query.nearImage(readFileSync(join(IMAGES, `${s}.png`)), opts);
      checkOrder(`nearImage ${s}.png`, names(r), ranking(iq));
      const d = r.objects[0]?.metadata?.distance;
      const wantD = distances(iq)[0];
      record(`nearImage ${s}.png distance`, d !== undefined && Math.abs(d - wantD) < 1e-4, d, `expected ${wantD}`);
    }

    for (const [text, alpha, n] of [['a green triangle', 1, 3], ['a yellow star', 0.75, 1]]) {
      const hq = TEXT_VEC[text];
      const r = await shapes.query.hybrid(text, { alpha, limit: 10, ...(clientVectors ? { vector: hq } : {}) });
      checkOrder(`hybrid '${text}' alpha ${alpha}`, names(r), ranking(hq), n);
    }

    q = TEXT_VEC['a red circle'];
    const ds = distances(q);
    const threshold = (ds[2] + ds[3]) / 2;
    let agg = clientVectors
      ? await shapes.aggregate.nearVector(q, { distance: threshold })
      : await shapes.aggregate.nearText('a red circle', { distance: threshold });
    record(`aggregate nearText distance ${threshold.toFixed(4)}`, agg.totalCount === 3, agg.totalCount, 'expected 3');
    agg = clientVectors
      ? await shapes.aggregate.nearVector(q, { objectLimit: 4 })
      : await shapes.aggregate.nearText('a red circle', { objectLimit: 4 });
    record('aggregate nearText objectLimit 4', agg.totalCount === 4, agg.totalCount, 'expected 4');

    const obj = await shapes.query.fetchObjectById(shapeId('red-circle'));
    record('fetchObjectById properties', JSON.stringify(obj?.properties) === JSON.stringify({ text: 'a red circle' }),
      obj?.properties, 'expected only the caption (blobs are not returned by default)');
  } finally {
    await client.collections.delete(COLLECTION);
  }
}

const client = await weaviate.connectToCustom({
  httpHost: url.hostname,
  httpPort: Number(url.port || (url.protocol === 'https:' ? 443 : 80)),
  httpSecure: url.protocol === 'https:',
  grpcHost,
  grpcPort: Number(grpcPort),
  grpcSecure: false,
});
try {
  await run(client);
} catch (e) {
  record('scenario ran to the end', false, String(e), e?.stack ?? String(e));
} finally {
  await client.close();
}
console.log(`ts-v3 scenario: ${checked - failures.length} passed, ${failures.length} failed`);
for (const f of failures) console.error(`  - ${f}`);
process.exit(failures.length ? 1 : 0);
