import { GlobalAllocator, Random } from '@heaplab/core';
const heap = GlobalAllocator.create({ backend: 'basic', heapBytes: 8*1024*1024 });
const r = new Random(7);
for (let trial = 0; trial < 200; trial++) {
  const live = []; const log = [];
  for (let i = 0; i < 12; i++) {
    const k = r.int(0, 4);
    if (k === 0) { const s = r.int(0, 1100); live.push(heap.malloc(s)); log.push(`m${s}`); }
    else if (k === 1) { const s = r.int(0, 300), a = 2 ** r.int(3, 9); live.push(heap.alignedAlloc(a, s)); log.push(`a${a},${s}`); }
    else if (live.length) { const j = r.int(0, live.length); const ad = live[j];
      if (k === 2) { heap.free(ad); live.splice(j,1); log.push(`f${j}`); } else { const s = r.int(0, 1500); live[j] = heap.realloc(ad, s); log.push(`r${j},${s}`); } }
  }
  heap.check(); heap.walk(); heap.stats();
  for (const a of live) heap.free(a);
  const u = heap.usedBytes();
  if (u !== 0) { console.log('leak', u, log.join(' ')); break; }
}
