// Real-client scenario: the TypeScript/JavaScript `weaviate-ts-client` 2.x (npm) against clipgate.
//
// weaviate-ts-client 2.x sends withNearText / withNearImage as GraphQL and batches over REST
// (shared/spec/clients.md). Run as plain ES module JavaScript on Node so CI needs no compiler.
//
// Usage: CLIPGATE_URL=http://127.0.0.1:8080 node scenario.mjs   (exit 0 = all checks passed)
//
// Expected rankings come from the bundled fixture model (shapes x colours), checked with an
// independent ONNX Runtime computation, each with a clear margin.

import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createHash } from 'node:crypto';
import weaviate from 'weaviate-ts-client';

const here = dirname(fileURLToPath(import.meta.url));
const images = join(here, '..', '..', '..', 'fixtures', 'images');
const CLASS = 'ClientTsV2Shapes';
const SHAPES = [
  'blue-circle', 'blue-square', 'brown-hexagon', 'green-triangle', 'orange-diamond',
  'pink-heart', 'purple-cross', 'red-circle', 'red-square', 'yellow-star',
];

/** A stable UUID (v4 layout) per shape, so results can be named. */
function shapeId(name) {
  const h = createHash('sha256').update(`clipgate-ts/${name}`).digest('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-4${h.slice(13, 16)}-8${h.slice(17, 20)}-${h.slice(20, 32)}`;
}
const nameOf = Object.fromEntries(SHAPES.map((s) => [shapeId(s), s]));
const b64 = (name) => readFileSync(join(images, `${name}.png`)).toString('base64');

const failures = [];
let checked = 0;
function record(label, ok, shown, failure) {
  checked += 1;
  console.log(`${(ok ? 'ok' : 'FAIL').padEnd(5)} ts-v2      ${label}: ${JSON.stringify(shown)}`);
  if (!ok) failures.push(`${label}: ${failure}`);
}
function checkOrder(label, got, wantPrefix) {
  const ok = wantPrefix.every((w, i) => got[i] === w);
  record(label, ok, got.slice(0, wantPrefix.length + 1), `expected ${wantPrefix} first, got ${got}`);
}
function names(res) {
  if (res.errors) throw new Error(`GraphQL errors: ${JSON.stringify(res.errors)}`);
  return res.data.Get[CLASS].map((o) => nameOf[o._additional.id] ?? o._additional.id);
}

async function main() {
  const url = new URL(process.env.CLIPGATE_URL ?? 'http://127.0.0.1:8080');
  const client = weaviate.client({ scheme: url.protocol.replace(':', ''), host: url.host });

  const exists = await client.schema.exists(CLASS);
  if (exists) await client.schema.classDeleter().withClassName(CLASS).do();
  await client.schema.classCreator().withClass({
    class: CLASS,
    vectorizer: 'multi2vec-clip',
    moduleConfig: { 'multi2vec-clip': { imageFields: ['image'] } },
    properties: [
      { name: 'label', dataType: ['text'] },
      { name: 'image', dataType: ['blob'] },
    ],
  }).do();
  try {
    const stored = await client.schema.classGetter().withClassName(CLASS).do();
    record('schema get shows the vectorizer', stored.vectorizer === 'multi2vec-clip', stored.vectorizer,
      `got ${stored.vectorizer}`);

    let batcher = client.batch.objectsBatcher();
    for (const s of SHAPES) {
      batcher = batcher.withObject({ class: CLASS, id: shapeId(s), properties: { label: s.replace('-', ' '), image: b64(s) } });
    }
    const results = await batcher.do();
    const failed = results.filter((r) => r.result?.errors);
    record('batch import', failed.length === 0 && results.length === SHAPES.length, results.length,
      JSON.stringify(failed.map((r) => r.result.errors)));

    const get = () => client.graphql.get().withClassName(CLASS)
      .withFields('label _additional { id distance }').withLimit(10);

    checkOrder("withNearText 'a red circle'",
      names(await get().withNearText({ concepts: ['a red circle'] }).do()),
      ['red-circle', 'blue-circle']);
    checkOrder("withNearText 'a green triangle'",
      names(await get().withNearText({ concepts: ['a green triangle'] }).do()),
      ['green-triangle']);
    checkOrder('withNearText moveTo concepts (force 1)',
      names(await get().withNearText({
        concepts: ['a pink heart'], moveTo: { concepts: ['a purple cross'], force: 1 },
      }).do()),
      ['purple-cross', 'pink-heart']);
    const img = await get().withNearImage({ image: b64('yellow-star') }).do();
    checkOrder('withNearImage yellow-star.png', names(img), ['yellow-star']);
    const d = img.data.Get[CLASS][0]._additional.distance;
    record('same image has distance ~0', Math.abs(d) < 1e-4, d, 'expected ~0');
    checkOrder('withNearImage red-circle.png',
      names(await get().withNearImage({ image: b64('red-circle') }).do()),
      ['red-circle', 'blue-circle']);
  } finally {
    await client.schema.classDeleter().withClassName(CLASS).do();
  }
  console.log(`ts-v2 scenario: ${checked - failures.length} passed, ${failures.length} failed`);
  for (const f of failures) console.error(`  - ${f}`);
  return failures.length === 0 ? 0 : 1;
}

main().then((code) => process.exit(code), (err) => {
  console.error(`ts-v2 scenario crashed: ${err?.stack ?? err}`);
  process.exit(1);
});
