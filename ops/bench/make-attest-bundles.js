#!/usr/bin/env node
// Writes N distinct, valid ~2 KiB AI CER bundles (cer.ai.execution.v1, protocol 1.2.0), one compact
// JSON document per line, for the attestation benchmark (ops/bench/attest). Deterministic: bundle i
// is the same on every run. Hashes follow PROTOCOL.md §2.2–2.3 with the reference canonicalizer.
//
// usage: node ops/bench/make-attest-bundles.js N OUTFILE [PREFIX]   (PREFIX makes a distinct set)
'use strict';

const fs = require('fs');
const crypto = require('crypto');
const { canonicalize, valueHash } = require('./node-reference.js');

const n = parseInt(process.argv[2], 10);
const outFile = process.argv[3];
const prefix = process.argv[4] || 'bench';
if (!(n > 0) || !outFile) {
  console.error('usage: make-attest-bundles.js N OUTFILE');
  process.exit(2);
}

const filler = 'The quarterly filing mentions liquidity, covenant headroom and hedging exposure. ';
const out = fs.createWriteStream(outFile);
for (let i = 0; i < n; i++) {
  const input = {
    task: 'Summarise the risks in this filing excerpt.',
    document: { id: `doc-${i}`, text: filler.repeat(8), language: 'en' },
    options: { maxFindings: 3, strict: true, threshold: 0.35 },
  };
  const output = {
    summary: `Finding ${i}: ` + filler.repeat(4),
    findings: [{ rank: 1, severity: 'medium', probability: 0.42 }, { rank: 2, severity: 'low', probability: 0.17 }],
  };
  const snapshot = {
    type: 'ai.execution.v1',
    protocolVersion: '1.2.0',
    executionSurface: 'ai',
    executionId: `${prefix}-${i}`,
    timestamp: '2026-11-22T10:00:00.000Z',
    provider: 'openai',
    model: 'gpt-4o',
    modelVersion: null,
    prompt: 'You are a careful financial analyst.',
    input,
    inputHash: valueHash(input),
    parameters: { temperature: 0.2, maxTokens: 1024, topP: null, seed: 42 },
    output,
    outputHash: valueHash(output),
    sdkVersion: '0.22.0',
    appId: 'attest-bench',
  };
  const bundle = { bundleType: 'cer.ai.execution.v1', certificateHash: '', createdAt: '2026-11-22T10:00:01.000Z', version: '0.1', snapshot };
  const preimage = { bundleType: bundle.bundleType, createdAt: bundle.createdAt, snapshot, version: '0.1' };
  bundle.certificateHash = 'sha256:' + crypto.createHash('sha256').update(canonicalize(preimage), 'utf8').digest('hex');
  out.write(JSON.stringify(bundle) + '\n');
}
out.end();
