// node-postgres (with pg-cursor and pg-copy-streams) and postgres.js against
// `apiary serve`: parameters (untyped NULLs included), cursors, COPY both
// ways, transactions and errors. Usage: node clients.mjs PORT
// Every step asserts its answer; the first wrong one exits non-zero.
import assert from 'node:assert/strict';
import { pipeline } from 'node:stream/promises';
import { Readable } from 'node:stream';
import pg from 'pg';
import Cursor from 'pg-cursor';
import copyStreams from 'pg-copy-streams';
import postgres from 'postgres';

const port = Number(process.argv[2]);
const connection = { host: '127.0.0.1', port, user: 'analyst', database: 'default' };
const ROWS = 2000;

async function readAll(stream) {
  let text = '';
  for await (const chunk of stream) text += chunk;
  return text;
}

function copyLines(from, to, site) {
  let text = '';
  for (let i = from; i < to; i++) text += `${i}\t${site}\t${i}.5\n`;
  return text;
}

async function nodePostgres() {
  const client = new pg.Client(connection);
  await client.connect();
  await client.query('CREATE TABLE node_pg (id BIGINT, site TEXT, value DOUBLE PRECISION)');

  // COPY FROM STDIN, streamed from a Node stream.
  const copyIn = client.query(copyStreams.from('COPY node_pg FROM STDIN'));
  await pipeline(Readable.from([copyLines(0, ROWS / 2, 'a'), copyLines(ROWS / 2, ROWS, 'b')]), copyIn);
  assert.equal(copyIn.rowCount, ROWS);

  // Parameters: typed by context, and NULLs sent untyped (type 0).
  let r = await client.query('SELECT id, site, value FROM node_pg WHERE id = $1', [7]);
  assert.deepEqual(r.rows, [{ id: '7', site: 'a', value: 7.5 }]);
  r = await client.query('INSERT INTO node_pg VALUES ($1, $2, $3)', [ROWS, null, null]);
  assert.equal(r.rowCount, 1);
  r = await client.query('SELECT count(*)::int AS n FROM node_pg WHERE site IS NULL AND id = $1', [ROWS]);
  assert.deepEqual(r.rows, [{ n: 1 }]);
  r = await client.query('SELECT $1::text IS NULL AS a, $2::int + 1 AS b', [null, 41]);
  assert.deepEqual(r.rows, [{ a: true, b: 42 }]);
  r = await client.query({ text: 'SELECT site, count(*)::int AS n FROM node_pg GROUP BY site ORDER BY site', rowMode: 'array' });
  assert.deepEqual(r.rows, [['a', ROWS / 2], ['b', ROWS / 2], [null, 1]]);

  // A server-side portal read in batches (pg-cursor).
  const cursor = client.query(new Cursor('SELECT id FROM node_pg WHERE id < $1 ORDER BY id', [ROWS]));
  const ids = [];
  for (;;) {
    const batch = await cursor.read(300);
    if (batch.length === 0) break;
    assert.ok(batch.length <= 300);
    ids.push(...batch.map((row) => Number(row.id)));
  }
  await cursor.close();
  assert.deepEqual(ids, Array.from({ length: ROWS }, (_, i) => i));

  // COPY TO STDOUT, text and CSV.
  const text = await readAll(client.query(copyStreams.to('COPY (SELECT id, site FROM node_pg WHERE id < 3 ORDER BY id) TO STDOUT')));
  assert.equal(text, '0\ta\n1\ta\n2\ta\n');
  const csv = await readAll(client.query(copyStreams.to(`COPY (SELECT id, site FROM node_pg WHERE id >= ${ROWS - 1} ORDER BY id) TO STDOUT WITH (FORMAT csv, HEADER)`)));
  assert.equal(csv, `id,site\n${ROWS - 1},b\n${ROWS},\n`);

  // A rolled-back block keeps nothing; an error leaves the connection usable.
  await client.query('BEGIN');
  await client.query('INSERT INTO node_pg VALUES (-1, $1, 0)', ['rolled back']);
  await client.query('ROLLBACK');
  await assert.rejects(client.query('SELECT * FROM no_such_frame'), (e) => e.code === '42P01');
  await assert.rejects(client.query('SELECT 1/0'), (e) => e.code === '22012');
  r = await client.query('SELECT count(*)::int AS n FROM node_pg');
  assert.deepEqual(r.rows, [{ n: ROWS + 1 }]);
  await client.end();
}

async function postgresJs() {
  const sql = postgres({ ...connection, max: 2, onnotice: () => {} });
  await sql`CREATE TABLE node_pjs (id BIGINT, site TEXT, at TIMESTAMP)`;

  const writable = await sql`COPY node_pjs (id, site) FROM STDIN`.writable();
  await pipeline(Readable.from([copyLines(0, ROWS, 's').replace(/\t[0-9.]+\n/g, '\n')]), writable);

  let rows = await sql`SELECT count(*)::int AS n, min(id)::int AS lo, max(id)::int AS hi FROM node_pjs`;
  assert.deepEqual([...rows], [{ n: ROWS, lo: 0, hi: ROWS - 1 }]);

  // Values of every common type, and NULLs in both typed and untyped places.
  const at = new Date('2024-02-29T10:11:12.000Z');
  await sql`INSERT INTO node_pjs VALUES (${ROWS}, ${null}, ${at})`;
  rows = await sql`SELECT id, site, at FROM node_pjs WHERE id = ${ROWS}`;
  assert.equal(rows.length, 1);
  assert.equal(rows[0].site, null);
  rows = await sql`SELECT count(*)::int AS n FROM node_pjs WHERE site = ${null}`;
  assert.deepEqual([...rows], [{ n: 0 }]);
  rows = await sql`SELECT ${'x'}::text || ${'y'} AS s, ${2.5}::float8 * 2 AS f, ${true}::bool AS b`;
  assert.deepEqual([...rows], [{ s: 'xy', f: 5, b: true }]);

  // Cursors in batches.
  const sizes = [];
  let seen = 0;
  for await (const batch of sql`SELECT id FROM node_pjs WHERE id < ${ROWS} ORDER BY id`.cursor(750)) {
    sizes.push(batch.length);
    for (const row of batch) assert.equal(Number(row.id), seen++);
  }
  assert.deepEqual(sizes, [750, 750, 500]);

  const copied = await readAll(await sql`COPY (SELECT id, site FROM node_pjs WHERE id < 2 ORDER BY id) TO STDOUT`.readable());
  assert.equal(copied, '0\ts\n1\ts\n');

  // Several statements in one simple query; a transaction that commits and
  // one that rolls back.
  const results = await sql.unsafe('SELECT 1 AS a; SELECT 2 AS b');
  assert.deepEqual(results.map((r) => [...r]), [[{ a: 1 }], [{ b: 2 }]]);
  await sql.begin(async (tx) => {
    await tx`INSERT INTO node_pjs (id, site) VALUES (${-1}, ${'committed'})`;
  });
  await assert.rejects(sql.begin(async (tx) => {
    await tx`INSERT INTO node_pjs (id, site) VALUES (${-2}, ${'rolled back'})`;
    throw new Error('abandon');
  }), /abandon/);
  rows = await sql`SELECT site FROM node_pjs WHERE id < 0 ORDER BY id`;
  assert.deepEqual([...rows], [{ site: 'committed' }]);
  await assert.rejects(sql`SELECT * FROM no_such_frame`, (e) => e.code === '42P01');
  await sql.end();
}

await nodePostgres();
await postgresJs();
console.log('node clients: all checks passed');
