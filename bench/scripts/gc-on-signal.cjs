'use strict';
// Preloaded (`node --expose-gc -r`) into a Node benchmark server by
// idle-node-heap.sh: on SIGUSR2 runs a full garbage collection and prints the
// process's memory use, so that what the server keeps alive can be told apart
// from garbage V8 has not collected yet.
process.on('SIGUSR2', async () => {
  // V8 gives emptied pages back to the system after its (concurrent) sweeping:
  // three collections a moment apart.
  for (let i = 0; i < 3; i++) {
    global.gc();
    await new Promise((resolve) => setTimeout(resolve, 500));
  }
  const m = process.memoryUsage();
  const mib = (bytes) => (bytes / 1048576).toFixed(1);
  console.error(
    `HEAP_AFTER_GC rss ${mib(m.rss)} MiB, V8 heap used ${mib(m.heapUsed)} of ${mib(m.heapTotal)} MiB, external ${mib(m.external)} MiB`,
  );
});
