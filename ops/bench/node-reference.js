#!/usr/bin/env node
// Straightforward Node.js reference implementation of AI CER verification
// (cer.ai.execution.v1, protocol 1.2.0 / nexart-v1), used as the baseline for the
// CERKit benchmark (ops/bench/cerkit). Node built-ins only, single-threaded.
//
// usage: node ops/bench/node-reference.js FILE SECONDS
//
// Phase 1 (verify): for SECONDS seconds, repeatedly verify the file's bytes:
//   JSON.parse(buf.toString('utf8')), light schema checks, recompute inputHash and
//   outputHash (PROTOCOL.md §2.2), recompute certificateHash (§2.3), compare with the
//   claimed values. Any failure exits non-zero with a message.
// Phase 2 (canonicalize): for SECONDS seconds, repeatedly canonicalize the parsed
//   bundle object (whole bundle -> canonical string -> Buffer.from(..., 'utf8')).
//   Throughput is reported as INPUT FILE bytes processed per second, MB = 1e6 bytes.
// Each phase is preceded by a ~0.5 s untimed warm-up of the same loop.
//
// Output: one JSON line on stdout:
//   {"impl":"node","file":FILE,"bytes":N,"verifyPerSec":X,"canonicalMBps":Y}
// FILE is the path exactly as given on the command line, N the file size in bytes.
'use strict';

const fs = require('fs');
const crypto = require('crypto');

const WARMUP_SECONDS = 0.5;

// Canonical JSON, nexart-v1 (PROTOCOL.md §1.1): recursive, keys sorted with the JS
// default sort (UTF-16 code units), undefined members dropped, leaves via JSON.stringify.
function canonicalize(v) {
  if (v === null) return 'null';
  switch (typeof v) {
    case 'boolean':
      return v ? 'true' : 'false';
    case 'number':
      if (!Number.isFinite(v)) throw new Error(`Non-finite number not allowed in canonical JSON: ${v}`);
      return JSON.stringify(v);
    case 'string':
      return JSON.stringify(v);
    case 'object': {
      if (Array.isArray(v)) return '[' + v.map(canonicalize).join(',') + ']';
      const keys = Object.keys(v).sort();
      const parts = [];
      for (const k of keys) {
        if (v[k] === undefined) continue;
        parts.push(JSON.stringify(k) + ':' + canonicalize(v[k]));
      }
      return '{' + parts.join(',') + '}';
    }
    default:
      throw new Error(`Unsupported type for canonical JSON: ${typeof v}`);
  }
}

function sha256Prefixed(str) {
  return 'sha256:' + crypto.createHash('sha256').update(Buffer.from(str, 'utf8')).digest('hex');
}

function valueHash(value) {
  return sha256Prefixed(typeof value === 'string' ? value : canonicalize(value));
}

function fail(msg) {
  process.stderr.write(`node-reference: verification failed: ${msg}\n`);
  process.exit(1);
}

// Full verification of the raw bytes. Returns the parsed bundle.
function verify(buf) {
  const b = JSON.parse(buf.toString('utf8'));
  if (b === null || typeof b !== 'object' || Array.isArray(b)) fail('bundle is not an object');
  if (b.bundleType !== 'cer.ai.execution.v1') fail(`bundleType ${JSON.stringify(b.bundleType)}`);
  if (b.version !== '0.1') fail(`version ${JSON.stringify(b.version)}`);
  if (typeof b.createdAt !== 'string' || b.createdAt === '') fail('createdAt');
  const s = b.snapshot;
  if (s === null || typeof s !== 'object' || Array.isArray(s)) fail('snapshot missing');
  if (s.protocolVersion !== '1.2.0') fail(`protocolVersion ${JSON.stringify(s.protocolVersion)}`);
  if (typeof b.certificateHash !== 'string' || !b.certificateHash.startsWith('sha256:')) fail('certificateHash format');

  if (s.input === undefined || s.input === null) fail('snapshot.input missing');
  if (s.output === undefined || s.output === null) fail('snapshot.output missing');
  const inputHash = valueHash(s.input);
  if (inputHash !== s.inputHash) fail(`inputHash: claimed ${s.inputHash}, computed ${inputHash}`);
  const outputHash = valueHash(s.output);
  if (outputHash !== s.outputHash) fail(`outputHash: claimed ${s.outputHash}, computed ${outputHash}`);

  const p = { bundleType: 'cer.ai.execution.v1', createdAt: b.createdAt, snapshot: s, version: '0.1' };
  const signals = b.context && b.context.signals;
  if (Array.isArray(signals) && signals.length > 0) p.context = { signals };
  const certHash = sha256Prefixed(canonicalize(p));
  if (certHash !== b.certificateHash) fail(`certificateHash: claimed ${b.certificateHash}, computed ${certHash}`);
  return b;
}

// Runs fn repeatedly for `seconds`; returns [iterations, elapsedSeconds].
function runFor(seconds, fn) {
  const budget = BigInt(Math.round(seconds * 1e9));
  const start = process.hrtime.bigint();
  let n = 0;
  let now = start;
  do {
    fn();
    n++;
    now = process.hrtime.bigint();
  } while (now - start < budget);
  return [n, Number(now - start) / 1e9];
}

function main() {
  const file = process.argv[2];
  const seconds = Number(process.argv[3]);
  if (!file || !Number.isFinite(seconds) || seconds <= 0) {
    process.stderr.write('usage: node node-reference.js FILE SECONDS\n');
    process.exit(2);
  }
  const buf = fs.readFileSync(file);
  const bytes = buf.length;

  // Phase 1: verification of the raw bytes.
  const bundle = verify(buf); // also fails fast on an invalid file
  runFor(WARMUP_SECONDS, () => verify(buf));
  const [vn, vt] = runFor(seconds, () => verify(buf));
  const verifyPerSec = vn / vt;

  // Phase 2: canonicalization of the already-parsed bundle.
  let sink = 0;
  const canon = () => {
    sink += Buffer.from(canonicalize(bundle), 'utf8').length;
  };
  runFor(WARMUP_SECONDS, canon);
  const [cn, ct] = runFor(seconds, canon);
  const canonicalMBps = (cn * bytes) / ct / 1e6;
  if (sink <= 0) fail('canonical output empty');

  const round = (x, d) => Math.round(x * 10 ** d) / 10 ** d;
  process.stdout.write(
    JSON.stringify({
      impl: 'node',
      file,
      bytes,
      verifyPerSec: round(verifyPerSec, 2),
      canonicalMBps: round(canonicalMBps, 3),
    }) + '\n'
  );
}

module.exports = { canonicalize, sha256Prefixed, valueHash };
if (require.main === module) main();
