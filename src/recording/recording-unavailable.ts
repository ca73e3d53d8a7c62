/** Recording cannot take the event: in write-ahead mode the message must not be forwarded. */
export class RecordingUnavailableError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'RecordingUnavailableError';
  }
}
