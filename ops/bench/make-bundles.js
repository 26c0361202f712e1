#!/usr/bin/env node
// Generates three deterministic, VALID AI CER bundles (cer.ai.execution.v1,
// protocolVersion 1.2.0) of roughly 1 KiB, 16 KiB and 1 MiB serialized size
// for the CERKit benchmark (ops/bench/cerkit).
//
// usage: node ops/bench/make-bundles.js OUTDIR
//
// Output: OUTDIR/bundle-1k.json, OUTDIR/bundle-16k.json, OUTDIR/bundle-1m.json,
// written with JSON.stringify(bundle, null, 2) (pretty, NOT canonical, so a
// verifier has to re-canonicalize). Output is byte-identical across runs: all
// variable content comes from a seeded PRNG (mulberry32), timestamps are fixed.
//
// Hashing follows PROTOCOL.md §1.1 (nexart-v1 canonical JSON), §2.2
// (input/output hash) and §2.3 (certificateHash with context.signals).
// Node built-ins only.
'use strict';

const fs = require('fs');
const path = require('path');
const crypto = require('crypto');

// ---------------------------------------------------------------------------
// Canonical JSON (nexart-v1) and hashes: the reference implementation's own.
const { canonicalize, valueHash } = require('./node-reference.js');
function sha256Hex(str) {
  return crypto.createHash('sha256').update(Buffer.from(str, 'utf8')).digest('hex');
}

function certificateHash(bundle) {
  const p = {
    bundleType: 'cer.ai.execution.v1',
    createdAt: bundle.createdAt,
    snapshot: bundle.snapshot,
    version: '0.1',
  };
  const signals = bundle.context && bundle.context.signals;
  if (Array.isArray(signals) && signals.length > 0) p.context = { signals };
  return 'sha256:' + sha256Hex(canonicalize(p));
}

// ---------------------------------------------------------------------------
// Seeded PRNG (mulberry32) and content helpers.

function mulberry32(seed) {
  let a = seed >>> 0;
  return function () {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const WORDS = [
  'revenue', 'margin', 'risk', 'forecast', 'churn', 'liquidity', 'exposure', 'quarter',
  'guidance', 'hedging', 'volatility', 'segment', 'backlog', 'capex', 'covenant', 'tariff',
  // non-ASCII (BMP, incl. CJK / Greek / accented) and non-BMP (emoji)
  'Zürich', 'naïve', 'café', 'São Paulo', 'Ωμέγα', '東京', '売上高', 'Δ-margin', '€-denominated',
  'façade', 'Kraków', 'Straße', '📈', '⚠️', 'résumé', 'Москва',
];
const LANGS = ['en', 'de', 'fr', 'ja', 'pt-BR', 'el', 'pl', 'ru'];
const SEVERITY = ['low', 'medium', 'high', 'critical'];

function makeGen(seed) {
  const r = mulberry32(seed);
  const g = {
    r,
    int: (lo, hi) => lo + Math.floor(r() * (hi - lo + 1)),
    pick: (arr) => arr[Math.floor(r() * arr.length)],
    bool: () => r() < 0.5,
    // non-integer doubles of varying magnitude (shortest-round-trip formatting matters)
    real: () => {
      const k = Math.floor(r() * 5);
      if (k === 0) return Math.round((r() * 2 - 1) * 1e6) / 1e4; // e.g. -37.1234
      if (k === 1) return r(); // full-precision double in [0,1)
      if (k === 2) return Math.round(r() * 1e9) / 1e13; // small, e.g. 5.2e-5 / 1.5e-7
      if (k === 3) return Math.round(r() * 1e8) / 100; // e.g. 123456.78
      return -Math.round(r() * 1e5) / 8; // binary-exact fractions, e.g. -1234.625
    },
    sentence: (n) => {
      const w = [];
      for (let i = 0; i < n; i++) w.push(g.pick(WORDS));
      let s = w.join(' ');
      // occasionally include characters JSON.stringify must escape
      const e = r();
      if (e < 0.08) s += '\n\t"quoted"';
      else if (e < 0.12) s += ' back\\slash';
      else if (e < 0.14) s += ' ctl\u0001';
      return s.charAt(0).toUpperCase() + s.slice(1) + '.';
    },
  };
  return g;
}

// One "document" of the structured input. Keys deliberately not in sorted order.
function makeDocument(g, i) {
  const nScores = g.int(2, 6);
  const scores = [];
  for (let j = 0; j < nScores; j++) scores.push(g.real());
  return {
    id: `doc-${String(i).padStart(5, '0')}`,
    title: g.sentence(g.int(2, 5)),
    lang: g.pick(LANGS),
    text: g.sentence(g.int(8, 24)),
    scores,
    metadata: {
      pages: g.int(1, 400),
      confidential: g.bool(),
      weight: g.real(),
      region: g.pick(['EMEA', 'APAC', 'AMER', 'LATAM']),
      tags: [g.pick(WORDS), g.pick(WORDS)],
      'zeta-key': null,
      Ärger: g.bool(), // non-ASCII key: sorts after all ASCII keys
    },
  };
}

function makeFinding(g, i) {
  return {
    rank: i + 1,
    severity: g.pick(SEVERITY),
    statement: g.sentence(g.int(6, 18)),
    probability: g.r(),
    impactUSD: Math.round(g.r() * 1e11) / 100,
    mitigated: g.bool(),
    evidence: [
      { docId: `doc-${String(g.int(0, 99999)).padStart(5, '0')}`, span: [g.int(0, 500), g.int(500, 2000)] },
      { docId: `doc-${String(g.int(0, 99999)).padStart(5, '0')}`, span: [g.int(0, 500), g.int(500, 2000)] },
    ],
  };
}

function makeSignals(g, n, tiny) {
  const out = [];
  for (let i = 0; i < n; i++) {
    out.push({
      type: g.pick(['retrieval', 'tool.call', 'policy.check', 'human.review']),
      source: g.pick(['rag-service', 'risk-engine', 'compliance-bot']),
      step: i,
      timestamp: `2026-02-13T17:48:3${i % 10}.${String(100 + i).slice(-3)}Z`,
      actor: g.pick(['agent', 'system', 'reviewer@example.com']),
      status: g.pick(['ok', 'ok', 'ok', 'warn']),
      payload: tiny ? { items: g.int(0, 50) } : { latencyMs: g.real(), items: g.int(0, 50), note: g.sentence(3) },
    });
  }
  return out;
}

// Build a complete, hashed bundle with nDocs input documents, nFindings output findings.
function makeBundle(label, nDocs, nFindings, nSignals) {
  const g = makeGen(0xce5 + nDocs * 7919 + nFindings * 104729 + nSignals);
  const docs = [];
  for (let i = 0; i < nDocs; i++) docs.push(makeDocument(g, i));
  const findings = [];
  for (let i = 0; i < nFindings; i++) findings.push(makeFinding(g, i));

  // nDocs === 0 is the "tiny" (~1 KiB) shape: the fixed CER skeleton (three
  // sha256 strings, ~20 snapshot fields, pretty-printed) already takes ~900 bytes,
  // so input/output are small objects, the signal has a minimal payload and
  // there is no meta. It still lands at ~1.3 KB.
  const tiny = nDocs === 0;
  const input = tiny
    ? { task: 'Q4 risks', k: 3, strict: true, threshold: 0.35 }
    : {
        task: 'Summarize the key risks in Q4 earnings.',
        options: { maxFindings: nFindings, language: 'en', strict: true, threshold: 0.35 },
        documents: docs,
      };
  const output = tiny
    ? { answer: 'Marge −12 % (Zürich) 📈', score: g.real(), ok: true }
    : {
        summary: g.sentence(10),
        findings,
        usage: { promptTokens: 1000 + nDocs * 37, completionTokens: 200 + nFindings * 41, costUSD: g.real() },
      };

  const snapshot = {
    type: 'ai.execution.v1',
    protocolVersion: '1.2.0',
    executionSurface: 'ai',
    executionId: `exec_bench_${label}`,
    timestamp: '2026-02-13T17:48:38.581Z',
    provider: 'openai',
    model: 'gpt-4o',
    modelVersion: null,
    prompt: tiny ? 'Be concise.' : 'You are a careful financial analyst.',
    input,
    inputHash: valueHash(input),
    parameters: { temperature: 0.2, maxTokens: 4096, topP: null, seed: 42 },
    output,
    outputHash: valueHash(output),
    sdkVersion: '0.1.0',
    appId: tiny ? 'bench' : 'evidence-ledger-bench',
  };
  const bundle = {
    bundleType: 'cer.ai.execution.v1',
    certificateHash: '',
    createdAt: '2026-02-13T17:48:38.582Z',
    version: '0.1',
    snapshot,
    context: { signals: makeSignals(g, nSignals, tiny) },
  };
  if (!tiny) bundle.meta = { source: 'evidence-ledger-bench', tags: ['bench', label] };
  bundle.certificateHash = certificateHash(bundle);
  return bundle;
}

function serialize(bundle) {
  return JSON.stringify(bundle, null, 2);
}

// Pick the document/finding counts whose serialized size is closest to target.
// Content for a given (nDocs, nFindings, nSignals) is fully determined by the seed.
function sized(label, target, nSignals) {
  // Findings are a fixed fraction of documents (roughly 1 finding per 4 docs, >= 1).
  const build = (n) => makeBundle(label, n, Math.max(1, Math.floor(n / 4)), nSignals);
  let lo = 0, hi = 1;
  while (Buffer.byteLength(serialize(build(hi))) < target) hi *= 2;
  while (hi - lo > 1) {
    const mid = (lo + hi) >> 1;
    if (Buffer.byteLength(serialize(build(mid))) < target) lo = mid; else hi = mid;
  }
  const a = serialize(build(lo)), b = serialize(build(hi));
  const da = Math.abs(Buffer.byteLength(a) - target), db = Math.abs(Buffer.byteLength(b) - target);
  return da <= db ? a : b;
}

function main() {
  const outDir = process.argv[2];
  if (!outDir) {
    console.error('usage: node make-bundles.js OUTDIR');
    process.exit(2);
  }
  fs.mkdirSync(outDir, { recursive: true });
  const specs = [
    ['1k', 1024, 1],
    ['16k', 16 * 1024, 3],
    ['1m', 1024 * 1024, 5],
  ];
  for (const [label, target, nSignals] of specs) {
    // The ~1 KiB bundle has a fixed tiny shape; the others are sized by document count.
    const text = target <= 2048 ? serialize(makeBundle(label, 0, 0, nSignals)) : sized(label, target, nSignals);
    const file = path.join(outDir, `bundle-${label}.json`);
    fs.writeFileSync(file, text);
    process.stderr.write(`${file}: ${Buffer.byteLength(text)} bytes (target ${target})\n`);
  }
}

main();
