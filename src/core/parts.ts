/**
 * Pieces of a message or frame held until it is complete.
 *
 * Every piece is a Buffer of its own (usually a view of the read it came in)
 * costing about 190 bytes of bookkeeping whatever its length, so a peer that
 * made every read one byte long (a fast trickle, one byte per TCP segment)
 * made a message held until complete cost ~200 times its size:
 * maxMessageBytes was no memory bound (invariant S3;
 * test/hostile/tiny-reads.test.ts). Runs of MERGE_RUN small pieces are merged
 * into one, so each byte is copied a bounded number of times and a message
 * costs about its size; large pieces are never copied. (Added by the
 * hardening tests' author; shared by the connection's message assembly and
 * the frame parser's gathered frames.)
 */

/** Pieces shorter than this are merged in runs of MERGE_RUN. */
export const SMALL_PART = 1024;
export const MERGE_RUN = 64;

/**
 * Appends `data` to `parts`. `smallRun` is how many pieces at the end of
 * `parts` are smaller than SMALL_PART (0 for an empty list); returns the new
 * count, to pass to the next call. The bytes are kept as they are (a merged
 * run is a plain copy), so masked pieces stay masked at the same positions.
 */
export function pushPart(parts: Buffer[], data: Buffer, smallRun: number): number {
  parts.push(data);
  if (data.length >= SMALL_PART) return 0;
  if (++smallRun < MERGE_RUN) return smallRun;
  const run = parts.splice(parts.length - MERGE_RUN, MERGE_RUN);
  let size = 0;
  for (const p of run) size += p.length;
  // Not Buffer.concat: small results come from the shared 8 KiB pool, whose slabs stay alive as long as any slice does.
  const merged = Buffer.allocUnsafeSlow(size);
  let at = 0;
  for (const p of run) at += p.copy(merged, at);
  parts.push(merged);
  // A merged run still small is the start of the next run (it grows by at least MERGE_RUN - 1 bytes a time).
  return merged.length < SMALL_PART ? 1 : 0;
}
