/** Who erased a recording, when and why, as its data key's row keeps it. */
export interface ErasureFacts {
  erasedAtUs: number;
  by: string | null;
  reason: string | null;
  /**
   * Whether an `erased` ledger entry signed by a trusted key states the same (told by erasedSessions; verify reports
   * only erasures that are). False: the key row says erased and nothing vouches for it (changed outside Portcullis).
   */
  vouched?: boolean;
}
