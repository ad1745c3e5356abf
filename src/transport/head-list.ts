/**
 * Lists read from the front by an index instead of shift(), which moves the
 * whole array on long lists: the outbound frame queue, the messages() inbox
 * and the ledger of unconfirmed writes. After reading up to `head`, returns
 * the head to use from now on: an entirely read list is emptied (0), and the
 * read part is cut off once it is at least 1,024 entries and half the list,
 * so memory follows what is still unread. Guarded by
 * test/transport/head-list.test.ts.
 */
export function compactHead<T>(items: T[], head: number): number {
  if (head === items.length) {
    items.length = 0;
    return 0;
  }
  if (head >= 1024 && head * 2 >= items.length) {
    items.splice(0, head);
    return 0;
  }
  return head;
}
