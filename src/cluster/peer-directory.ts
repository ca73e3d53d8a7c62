/** Where another replica of this gateway can be reached for the internal hop, by its instance id. */
export interface PeerDirectory {
  /** The internal base URL (e.g. http://10.0.0.5:8443) of a live replica, or undefined when it is unknown or gone. */
  addressOf(instanceId: string): string | undefined;
  /**
   * The same, read again first when it is not known as alive (a replica that joined since the last read): what is
   * answered before a request for it is refused as gone. Rate-limited by the directory. Absent: addressOf.
   */
  addressNow?(instanceId: string): Promise<string | undefined>;
  /**
   * The other live replicas that take new sessions (serving, not draining), by instance id, as last read: where a
   * draining replica opens a new legacy session instead of itself. Absent: none is known.
   */
  serving?(): string[];
}
