/**
 * The per-contact work of seeding that does not depend on the ledger chain
 * (parsing the address, ids, the wrapped evidence key: ~60% of the CPU),
 * done on another core while the main thread chains events and writes.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { createContactKey, parseAddress } from '../../src/contacts/index.js';
import { newId } from '../../src/shared/ids.js';
import { benchAddress } from './addresses.js';

export interface SeedChunkRequest {
  start: number;
  count: number;
}

export interface SeedChunk {
  start: number;
  ids: string[];
  addresses: string[];
  matchKeys: string[];
  providerKeys: (string | null)[];
  wrappedKeys: string[];
  eventIds: string[];
}

const masterKeys = (workerData as { masterKeys: { version: number; key: string }[] }).masterKeys.map((k) => ({
  version: k.version,
  key: Buffer.from(k.key, 'base64'),
}));

parentPort!.on('message', (request: SeedChunkRequest) => {
  const chunk: SeedChunk = { start: request.start, ids: [], addresses: [], matchKeys: [], providerKeys: [], wrappedKeys: [], eventIds: [] };
  for (let i = request.start; i < request.start + request.count; i++) {
    const parsed = parseAddress(benchAddress(i));
    if (!parsed.ok) throw new Error(`seed address rejected: ${parsed.reason}`);
    const id = newId();
    chunk.ids.push(id);
    chunk.addresses.push(parsed.address);
    chunk.matchKeys.push(parsed.matchKey);
    chunk.providerKeys.push(parsed.providerKey);
    chunk.wrappedKeys.push(createContactKey(masterKeys, id).wrapped);
    chunk.eventIds.push(newId(), newId());
  }
  parentPort!.postMessage(chunk);
});
