import type { Identity } from '../core/identity.js';
import type { ClientSink } from '../exchange/sink.js';
import type { VirtualOrigin } from '../pipeline/stage.js';
import type { JsonRpcMessage } from '../protocol/jsonrpc.js';

/**
 * A member session as a virtual server uses it: the gateway's own Session of the member connection, opened for the
 * virtual session's caller, whose "client" the member's link is.
 */
export interface MemberSession {
  readonly id: string;
  /** The caller's refreshed identity: access on the member is decided by the caller's groups now. */
  refreshIdentity(identity: Identity): void;
  /** False once it is ending: the answers it still delivers then are its own "ended before the server answered". */
  readonly isOpen: boolean;
  attach(sink: ClientSink): void;
  receive(message: JsonRpcMessage, text: string): void;
  close(reason: string): Promise<void>;
}

/** Opens a member session for the virtual session's caller; undefined when the caller may not open that member. */
export type OpenMember = (member: string, identity: Identity, origin: VirtualOrigin) => Promise<MemberSession | undefined>;
