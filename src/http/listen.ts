import type { Server } from 'node:http';

/** Listens on host:port; rejects with a message that says what to do when the address is taken. */
export function listen(server: Server, host: string, port: number): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    const onError = (err: NodeJS.ErrnoException) => {
      const where = `${host}:${port}`;
      reject(
        new Error(
          err.code === 'EADDRINUSE'
            ? `listen ${where}: the address is already in use; stop the other process or set \`listen\` in the config`
            : `listen ${where}: ${err.message}`,
        ),
      );
    };
    server.once('error', onError);
    server.listen(port, host, () => {
      server.off('error', onError);
      resolve();
    });
  });
}
