import { Agent, createServer, request } from 'node:http';

/**
 * The floor of any Node.js hop: a reverse proxy that does nothing but pipe bytes to the direct server and
 * back. It parses no JSON, checks nothing and records nothing, so the ratio of the gateway to it shows what
 * the gateway's own work costs, apart from the cost of one more process and one more loopback connection.
 * Run as its own process: `node null-proxy.js <target port>`; prints `listening <port>`.
 */
const target = Number(process.argv[2]);
const agent = new Agent({ keepAlive: true, maxSockets: Infinity });
const server = createServer((req, res) => {
  const upstream = request({ host: '127.0.0.1', port: target, path: req.url, method: req.method, headers: req.headers, agent }, (answer) => {
    res.writeHead(answer.statusCode ?? 502, answer.headers);
    answer.pipe(res);
  });
  upstream.on('error', () => res.destroy());
  req.pipe(upstream);
});
server.listen(0, '127.0.0.1', () => {
  const address = server.address();
  process.stdout.write(`listening ${typeof address === 'object' && address ? address.port : 0}\n`);
});
process.on('SIGTERM', () => process.exit(0));
