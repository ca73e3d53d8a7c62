/** Where another replica of this gateway can be reached for the internal hop, by its instance id. */
export interface PeerDirectory {
  /** The internal base URL (e.g. http://10.0.0.5:8443) of a live replica, or undefined when it is unknown or gone. */
  addressOf(instanceId: string): string | undefined;
}
