// Replays one sequential editing trace into Yjs or Loro as local edits, saves
// the document, loads it into a fresh document and prints one JSON line with
// the timings, so the figures sit beside those of 'interlude bench crdt'.
//
// Usage: node bench/replay.mjs yjs|loro TRACE.json.gz

import { readFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { gunzipSync } from 'node:zlib';

import { LoroDoc } from 'loro-crdt';
import * as Y from 'yjs';

export const LIBRARIES = ['yjs', 'loro'];

// Both libraries store the document text under this root name.
const TEXT_NAME = 'text';

// Heap samples are taken every this many patches, because a timer cannot
// fire while the synchronous apply loop runs.
const HEAP_SAMPLE_EVERY = 1024;

// Chunks of the code point mirror are split above this many UTF-16 code
// units, which keeps each lookup near O(length / MAX + MAX).
const MIRROR_CHUNK_MAX = 2048;

const MIB = 1024 * 1024;

// Fixed replica ids keep saved_bytes the same from run to run. Yjs picks a
// random 32-bit clientID and writes it as a varint in every item's origin,
// so random ids made the update size differ by up to 9% between runs here.
// This one takes 5 varint bytes, as 15 in 16 random ids do. Loro's random
// 64-bit peer id changed its snapshot size by a few dozen bytes.
const YJS_CLIENT_ID = 0xf0000000;
const LORO_PEER_ID = 0xf000000000000000n;

function isHighSurrogate(unit) {
  return unit >= 0xd800 && unit <= 0xdbff;
}

function isLowSurrogate(unit) {
  return unit >= 0xdc00 && unit <= 0xdfff;
}

// Returns the UTF-16 offset reached after stepping over up to count code
// points of s from offset start, and how many code points were left over
// because s ended first. A surrogate pair is one code point and a lone
// surrogate is one code point, as Array.from(s) counts them.
function stepCodePoints(s, start, count) {
  let offset = start;
  let left = count;
  while (left > 0 && offset < s.length) {
    const pair = isHighSurrogate(s.charCodeAt(offset)) &&
      offset + 1 < s.length && isLowSurrogate(s.charCodeAt(offset + 1));
    offset += pair ? 2 : 1;
    left--;
  }
  return { offset, left };
}

/** Counts code points as Array.from(s).length would, in one pass. */
export function countCodePoints(s) {
  let points = s.length;
  for (let i = 0; i + 1 < s.length; i++) {
    if (isHighSurrogate(s.charCodeAt(i)) && isLowSurrogate(s.charCodeAt(i + 1))) {
      points--;
      i++;
    }
  }
  return points;
}

/**
 * A copy of the document text, split into chunks that each know their
 * length in code points, so that a code point position converts to a UTF-16
 * offset without scanning the whole text on every patch.
 */
export class CodePointMirror {
  /** chunkMax is the chunk size in UTF-16 code units, which tests lower. */
  constructor(text = '', { chunkMax = MIRROR_CHUNK_MAX } = {}) {
    this.chunkMax = chunkMax;
    this.chunks = [];
    let offset = 0;
    do {
      let end = Math.min(offset + chunkMax, text.length);
      // Keep each surrogate pair inside one chunk.
      if (end < text.length && isHighSurrogate(text.charCodeAt(end - 1)) &&
          isLowSurrogate(text.charCodeAt(end))) {
        end--;
      }
      this.chunks.push(makeChunk(text.slice(offset, end)));
      offset = end;
    } while (offset < text.length);
  }

  /** Length of the text in code points. */
  get length() {
    return this.chunks.reduce((sum, chunk) => sum + chunk.points, 0);
  }

  toString() {
    return this.chunks.map((chunk) => chunk.text).join('');
  }

  /**
   * Applies one patch given in code points and returns the same patch in
   * UTF-16 code units: { offset, deleteUnits }. Throws a RangeError when
   * the patch reaches past the end of the text.
   */
  splice(position, deleteCount, insert) {
    if (!Number.isInteger(position) || position < 0 ||
        !Number.isInteger(deleteCount) || deleteCount < 0) {
      throw new RangeError(`invalid patch [${position}, ${deleteCount}]: position and delete count must be non-negative integers`);
    }

    // Find the chunk holding the position. A position at the end of a chunk
    // stays in that chunk, so appends do not create a new chunk.
    let index = 0;
    let unitsBefore = 0;
    let pointsLeft = position;
    while (pointsLeft > this.chunks[index].points) {
      pointsLeft -= this.chunks[index].points;
      unitsBefore += this.chunks[index].text.length;
      index++;
      if (index === this.chunks.length) {
        throw new RangeError(`patch position ${position} is past the end of the text (${this.length} code points)`);
      }
    }
    const local = stepCodePoints(this.chunks[index].text, 0, pointsLeft).offset;
    const offset = unitsBefore + local;

    const deleteUnits = this.#deleteFrom(index, local, deleteCount, position);
    if (insert.length > 0) this.#insertAt(index, local, insert);
    return { offset, deleteUnits };
  }

  // Removes count code points starting at UTF-16 offset local of chunk
  // index, across later chunks if needed, and returns the UTF-16 units
  // removed. Chunks emptied after the first one are dropped.
  #deleteFrom(index, local, count, position) {
    let removedUnits = 0;
    let left = count;
    let current = index;
    let start = local;
    while (left > 0) {
      if (current === this.chunks.length) {
        throw new RangeError(`patch deleting ${count} code points at ${position} reaches past the end of the text`);
      }
      const chunk = this.chunks[current];
      const step = stepCodePoints(chunk.text, start, left);
      const removedPoints = left - step.left;
      removedUnits += step.offset - start;
      chunk.text = chunk.text.slice(0, start) + chunk.text.slice(step.offset);
      chunk.points -= removedPoints;
      left = step.left;
      if (chunk.text.length === 0 && current !== index) {
        this.chunks.splice(current, 1);
      } else {
        current++;
      }
      start = 0;
    }
    return removedUnits;
  }

  #insertAt(index, local, insert) {
    const chunk = this.chunks[index];
    chunk.text = chunk.text.slice(0, local) + insert + chunk.text.slice(local);
    chunk.points += countCodePoints(insert);
    if (chunk.text.length > 2 * this.chunkMax) {
      const replacement = new CodePointMirror(chunk.text, { chunkMax: this.chunkMax }).chunks;
      this.chunks.splice(index, 1, ...replacement);
    }
  }
}

function makeChunk(text) {
  return { text, points: countCodePoints(text) };
}

/**
 * Reads a gzipped sequential trace and returns it with every patch converted
 * to UTF-16 offsets, which is what both Yjs and Loro take. The conversion
 * runs here, outside the timed apply, and the replayed mirror text must
 * equal endContent or the trace is rejected.
 */
export function loadTrace(file) {
  let compressed;
  try {
    compressed = readFileSync(file);
  } catch (err) {
    throw new Error(`cannot read trace ${file}: ${err.message}`, { cause: err });
  }
  let parsed;
  try {
    parsed = JSON.parse(gunzipSync(compressed).toString('utf8'));
  } catch (err) {
    throw new Error(`trace ${file} is not gzipped JSON: ${err.message}`, { cause: err });
  }
  return prepareTrace(parsed, traceName(file));
}

export function traceName(file) {
  return basename(file).replace(/\.json(\.gz)?$/, '');
}

/** Validates a parsed sequential trace and converts its patches to UTF-16. */
export function prepareTrace(parsed, name) {
  if (parsed.kind === 'concurrent') {
    throw new Error(`trace ${name} is concurrent: replay.mjs replays sequential traces only`);
  }
  if (!Array.isArray(parsed.txns) || typeof parsed.endContent !== 'string') {
    throw new Error(`trace ${name} is missing txns or endContent`);
  }
  const startContent = parsed.startContent ?? '';
  const mirror = new CodePointMirror(startContent);
  let edits = 0;

  function convertPatch(patch, txnIndex) {
    const [position, deleteCount, insert] = Array.isArray(patch) ? patch : [];
    if (typeof insert !== 'string') {
      throw new Error(`trace ${name}: transaction ${txnIndex} has patch ${JSON.stringify(patch)}: expected [position, deleteCount, insertText]`);
    }
    edits++;
    let converted;
    try {
      converted = mirror.splice(position, deleteCount, insert);
    } catch (err) {
      throw new Error(`trace ${name}: transaction ${txnIndex}: ${err.message}`, { cause: err });
    }
    return [converted.offset, converted.deleteUnits, insert];
  }

  const txns = parsed.txns.map((txn, txnIndex) => {
    if (!Array.isArray(txn?.patches)) {
      throw new Error(`trace ${name}: transaction ${txnIndex} has no patches array`);
    }
    return txn.patches.map((patch) => convertPatch(patch, txnIndex));
  });

  const replayed = mirror.toString();
  if (replayed !== parsed.endContent) {
    const at = firstDifference(replayed, parsed.endContent);
    throw new Error(`trace ${name}: applying its patches gives text that differs from endContent at UTF-16 offset ${at}, so the trace or the code point conversion is wrong`);
  }
  return { name, startContent, endContent: parsed.endContent, txns, edits };
}

function firstDifference(a, b) {
  let i = 0;
  while (i < a.length && i < b.length && a[i] === b[i]) i++;
  return i;
}

/**
 * Ways the replay can group edits into library transactions:
 * - "none": no explicit grouping. Yjs runs each insert and delete in its own
 *   implicit transaction, and Loro gathers every edit in its pending
 *   transaction and commits once after the last patch (inside apply_ms).
 * - "trace": one library transaction per trace transaction, as an editor
 *   that commits each keystroke for sync would (Yjs doc.transact, Loro
 *   doc.commit).
 */
export const TXN_MODES = ['none', 'trace'];

// Each replayer applies the converted patches as local edits and returns the
// document and the peak heapUsed seen.
function replayYjs(trace, txnMode) {
  const doc = new Y.Doc();
  doc.clientID = YJS_CLIENT_ID;
  const text = doc.getText(TEXT_NAME);
  if (trace.startContent) text.insert(0, trace.startContent);
  const applyPatches = (patches) => {
    for (const [offset, deleteUnits, insert] of patches) {
      if (deleteUnits > 0) text.delete(offset, deleteUnits);
      if (insert.length > 0) text.insert(offset, insert);
    }
  };
  const heap = new HeapSampler();
  for (const patches of trace.txns) {
    if (txnMode === 'trace') {
      doc.transact(() => applyPatches(patches));
    } else {
      applyPatches(patches);
    }
    heap.tick(patches.length);
  }
  return { doc, heapPeak: heap.finish() };
}

function replayLoro(trace, txnMode) {
  const doc = new LoroDoc();
  doc.setPeerId(LORO_PEER_ID);
  const text = doc.getText(TEXT_NAME);
  if (trace.startContent) {
    text.insert(0, trace.startContent);
    doc.commit();
  }
  const heap = new HeapSampler();
  for (const patches of trace.txns) {
    for (const [offset, deleteUnits, insert] of patches) {
      if (deleteUnits > 0) text.delete(offset, deleteUnits);
      if (insert.length > 0) text.insert(offset, insert);
    }
    if (txnMode === 'trace') doc.commit();
    heap.tick(patches.length);
  }
  doc.commit();
  return { doc, heapPeak: heap.finish() };
}

function saveYjs(doc) {
  return Y.encodeStateAsUpdate(doc);
}

function saveLoro(doc) {
  return doc.export({ mode: 'snapshot' });
}

function textYjs(doc) {
  return doc.getText(TEXT_NAME).toString();
}

function textLoro(doc) {
  return doc.getText(TEXT_NAME).toString();
}

function loadYjs(bytes) {
  const doc = new Y.Doc();
  Y.applyUpdate(doc, bytes);
  return textYjs(doc);
}

// LoroDoc.fromSnapshot decodes lazily, so reading the text here is what
// makes the timed load include decoding the document state.
function loadLoro(bytes) {
  return textLoro(LoroDoc.fromSnapshot(bytes));
}

/**
 * Per library: the npm package, replay(trace, txnMode) returning
 * { doc, heapPeak }, text(doc), save(doc) returning bytes, and load(bytes)
 * returning the text of a fresh document loaded from them.
 */
export const REPLAYERS = {
  yjs: { package: 'yjs', replay: replayYjs, text: textYjs, save: saveYjs, load: loadYjs },
  loro: {
    package: 'loro-crdt',
    replay: replayLoro,
    text: textLoro,
    save: saveLoro,
    load: loadLoro,
    loadNote: 'fromSnapshot is lazy, so load_ms includes getText().toString(), which decodes the text state. The change history stays encoded because nothing reads it.',
  },
};

class HeapSampler {
  constructor() {
    this.peak = process.memoryUsage().heapUsed;
    this.sinceSample = 0;
  }

  tick(patches) {
    this.sinceSample += patches;
    if (this.sinceSample >= HEAP_SAMPLE_EVERY) {
      this.sinceSample = 0;
      this.peak = Math.max(this.peak, process.memoryUsage().heapUsed);
    }
  }

  finish() {
    return Math.max(this.peak, process.memoryUsage().heapUsed);
  }
}

/** Returns the installed version of an npm package in bench/node_modules. */
export function packageVersion(name) {
  const benchDir = dirname(fileURLToPath(import.meta.url));
  const manifest = join(benchDir, 'node_modules', name, 'package.json');
  return JSON.parse(readFileSync(manifest, 'utf8')).version;
}

/**
 * Replays a prepared trace into one library, saves, loads into a fresh
 * document and returns the result record that the command prints.
 */
export function runBenchmark(library, trace, txnMode = 'none') {
  const replayer = REPLAYERS[library];
  if (!replayer) {
    throw new Error(`unknown library ${JSON.stringify(library)}: expected one of ${LIBRARIES.join(', ')}`);
  }
  if (!TXN_MODES.includes(txnMode)) {
    throw new Error(`unknown transaction mode ${JSON.stringify(txnMode)}: expected one of ${TXN_MODES.join(', ')}`);
  }

  let start = performance.now();
  const { doc, heapPeak } = replayer.replay(trace, txnMode);
  const applyMs = performance.now() - start;

  start = performance.now();
  const saved = replayer.save(doc);
  const saveMs = performance.now() - start;

  start = performance.now();
  const loadedText = replayer.load(saved);
  const loadMs = performance.now() - start;

  const result = {
    library,
    version: packageVersion(replayer.package),
    trace: trace.name,
    edits: trace.edits,
    txn_mode: txnMode,
    apply_ms: round(applyMs),
    save_ms: round(saveMs),
    load_ms: round(loadMs),
    saved_bytes: saved.byteLength,
    heap_mb: round(heapPeak / MIB),
    heap_note: `peak process.memoryUsage().heapUsed, sampled every ${HEAP_SAMPLE_EVERY} patches during apply. It includes the parsed trace and excludes WebAssembly memory.`,
    rss_mb: round(process.resourceUsage().maxRSS / 1024),
    ok: loadedText === trace.endContent,
  };
  if (replayer.loadNote) result.load_note = replayer.loadNote;
  return result;
}

function round(value) {
  return Math.round(value * 10) / 10;
}

const USAGE = `usage: node bench/replay.mjs [--txn=${TXN_MODES.join('|')}] ${LIBRARIES.join('|')} TRACE.json.gz
  --txn=none   no explicit transactions (default): Yjs commits each edit,
               Loro commits once after the last edit
  --txn=trace  one library transaction per trace transaction
`;

function main(argv) {
  let txnMode = 'none';
  const positional = [];
  for (const arg of argv) {
    if (arg.startsWith('--txn=')) {
      txnMode = arg.slice('--txn='.length);
    } else {
      positional.push(arg);
    }
  }
  const [library, file] = positional;
  if (positional.length !== 2 || !LIBRARIES.includes(library) || !TXN_MODES.includes(txnMode)) {
    process.stderr.write(USAGE);
    return 2;
  }
  const trace = loadTrace(file);
  const result = runBenchmark(library, trace, txnMode);
  process.stdout.write(JSON.stringify(result) + '\n');
  return result.ok ? 0 : 1;
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  try {
    process.exitCode = main(process.argv.slice(2));
  } catch (err) {
    process.stderr.write(`replay: ${err.message}\n`);
    process.exitCode = 1;
  }
}
