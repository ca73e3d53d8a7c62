/** Which way a message travels through the gateway: from the client to the server, or back. */
export type Direction = 'toServer' | 'toClient';
