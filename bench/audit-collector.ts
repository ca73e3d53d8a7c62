import { createServer } from 'node:http';

/**
 * A live HTTP audit collector for the benchmark, in its own process (as a SIEM's intake would be): it takes batches of
 * JSON lines as Splunk HEC's raw endpoint does, counts the records, and answers 200. GET /count tells how many it
 * took. Run as `node audit-collector.js`; prints `listening <port>`.
 */
let records = 0;
const server = createServer((req, res) => {
  if (req.method === 'GET' && req.url === '/count') {
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ records }));
    return;
  }
  let lines = 0;
  req.on('data', (chunk: Buffer) => {
    for (let at = chunk.indexOf(10); at !== -1; at = chunk.indexOf(10, at + 1)) lines++;
  });
  req.on('end', () => {
    records += lines;
    res.writeHead(200, { 'content-type': 'application/json' }).end('{"text":"Success","code":0}');
  });
});
server.keepAliveTimeout = 65_000;
server.listen(0, '127.0.0.1', () => {
  const address = server.address();
  process.stdout.write(`listening ${typeof address === 'object' && address ? address.port : 0}\n`);
});
process.on('SIGTERM', () => process.exit(0));
