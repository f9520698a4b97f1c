// Replays a generated trace with deletions and characters outside the Basic
// Multilingual Plane into Yjs and Loro. Run with: node --test bench/
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { gzipSync } from 'node:zlib';

import {
  CodePointMirror,
  LIBRARIES,
  REPLAYERS,
  TXN_MODES,
  countCodePoints,
  loadTrace,
  prepareTrace,
  runBenchmark,
} from './replay.mjs';

// Small deterministic PRNG (mulberry32), so a failure replays the same way.
function randomSource(seed) {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

// Mixes one-unit, BMP non-ASCII and two-unit characters, plus a two-code
// point emoji sequence (thumbs up with a skin tone modifier).
const ALPHABET = ['a', 'b', 'c', ' ', '\n', 'é', '中', '😀', '🎉', '👍🏽', '𝔸'];

// Applies a patch to a code point array, as the trace format defines it.
function applyReference(points, [position, deleteCount, insert]) {
  points.splice(position, deleteCount, ...Array.from(insert));
}

// Builds a sequential trace of count transactions. The first three are
// fixed, so every trace types an emoji and deletes one. The rest are random
// inserts, deletes and replacements of one patch each.
function generateTrace(count, seed) {
  const random = randomSource(seed);
  const pick = () => ALPHABET[Math.floor(random() * ALPHABET.length)];
  const points = [];
  const txns = [];
  const add = (patches) => {
    for (const patch of patches) applyReference(points, patch);
    txns.push({ patches });
  };

  add([[0, 0, 'hi 😀 there']]);
  add([[3, 1, '']]); // deletes the emoji at code point 3
  add([[3, 0, '🎉'], [0, 0, 'x']]); // two patches in one transaction

  while (txns.length < count) {
    const roll = random();
    const position = Math.floor(random() * (points.length + 1));
    if (roll < 0.6 || points.length === 0) {
      let insert = pick();
      if (random() < 0.1) insert += pick() + pick();
      add([[position, 0, insert]]);
    } else {
      const at = Math.min(position, points.length - 1);
      const deleteCount = 1 + Math.floor(random() * Math.min(3, points.length - at));
      add([[at, deleteCount, roll < 0.9 ? '' : pick()]]);
    }
  }
  return { startContent: '', endContent: points.join(''), txns };
}

const tempDir = mkdtempSync(join(tmpdir(), 'replay-test-'));
after(() => rmSync(tempDir, { recursive: true, force: true }));

function writeTrace(name, trace) {
  const file = join(tempDir, `${name}.json.gz`);
  writeFileSync(file, gzipSync(JSON.stringify(trace)));
  return file;
}

describe('CodePointMirror', () => {
  test('converts code points to UTF-16 offsets', () => {
    const mirror = new CodePointMirror('a😀b');
    assert.equal(mirror.length, 3);
    assert.deepEqual(mirror.splice(2, 0, 'x'), { offset: 3, deleteUnits: 0 });
    assert.deepEqual(mirror.splice(1, 1, ''), { offset: 1, deleteUnits: 2 });
    assert.equal(mirror.toString(), 'axb');
  });

  test('matches naive conversion on generated trace', () => {
    const trace = generateTrace(400, 7);
    // A tiny chunk size makes deletions cross chunk boundaries and makes
    // inserts split chunks.
    const mirror = new CodePointMirror('', { chunkMax: 4 });
    const points = [];
    for (const { patches } of trace.txns) {
      for (const patch of patches) {
        const [position, deleteCount, insert] = patch;
        const expected = {
          offset: points.slice(0, position).join('').length,
          deleteUnits: points.slice(position, position + deleteCount).join('').length,
        };
        assert.deepEqual(mirror.splice(position, deleteCount, insert), expected, `patch ${JSON.stringify(patch)}`);
        applyReference(points, patch);
      }
    }
    assert.equal(mirror.toString(), trace.endContent);
    assert.ok(mirror.chunks.length > 1, 'the test should exercise more than one chunk');
  });

  test('rejects position past end', () => {
    const mirror = new CodePointMirror('ab', { chunkMax: 1 });
    assert.throws(() => mirror.splice(3, 0, 'x'), RangeError);
    assert.throws(() => mirror.splice(1, 2, ''), RangeError);
    assert.throws(() => mirror.splice(-1, 0, 'x'), RangeError);
  });

  test('counts surrogate pairs once', () => {
    assert.equal(countCodePoints('a😀👍🏽'), 4);
    assert.equal(countCodePoints('\ud83d'), 1, 'a lone surrogate is one code point');
  });
});

describe('prepareTrace', () => {
  test('rejects wrong endContent', () => {
    const trace = generateTrace(20, 3);
    trace.endContent += '!';
    assert.throws(() => prepareTrace(trace, 'wrong-end'), /differs from endContent/);
  });

  test('rejects concurrent trace', () => {
    assert.throws(() => prepareTrace({ kind: 'concurrent', endContent: '', txns: [] }, 'concurrent'), /sequential traces only/);
  });

  test('counts every patch as an edit', () => {
    const trace = generateTrace(50, 5);
    const patchCount = trace.txns.reduce((sum, txn) => sum + txn.patches.length, 0);
    assert.equal(prepareTrace(trace, 'count').edits, patchCount);
  });
});

describe('replay', () => {
  const generated = generateTrace(400, 42);
  const file = writeTrace('generated', generated);
  const trace = loadTrace(file);

  test('generated trace has deletions and emoji', () => {
    const patches = generated.txns.flatMap((txn) => txn.patches);
    assert.ok(patches.some(([, deleteCount]) => deleteCount > 0));
    assert.match(generated.endContent, /[\u{10000}-\u{10ffff}]/u);
    assert.notEqual(countCodePoints(generated.endContent), generated.endContent.length);
  });

  for (const library of LIBRARIES) {
    for (const txnMode of TXN_MODES) {
      test(`${library} with txn mode ${txnMode} reaches endContent`, () => {
        const { doc } = REPLAYERS[library].replay(trace, txnMode);
        assert.equal(REPLAYERS[library].text(doc), generated.endContent);
      });
    }

    test(`${library} save and load round trip`, () => {
      const result = runBenchmark(library, trace);
      assert.equal(result.library, library);
      assert.equal(result.trace, 'generated');
      assert.equal(result.edits, generated.txns.reduce((sum, txn) => sum + txn.patches.length, 0));
      assert.ok(result.saved_bytes > 0);
      assert.equal(result.ok, true, 'loaded text should equal endContent');
    });
  }

  test('rejects unknown library', () => {
    assert.throws(() => runBenchmark('automerge', trace), /unknown library/);
  });
});
