// The peer of bench/ws: the same rooms as core-example's WebSocket routes, on Node's http
// module and the `ws` package (Debian's node-ws), one process, no per-message deflate.
//   GET  /healthz                          {"status":"ok"}
//   GET  /ws/{room}                        WebSocket into a room; messages are relayed to the
//                                          room's other members
//   POST /api/rooms/{room}/broadcast       the body, as one text message to every member
//   GET  /stats                            connections and memory, after a full GC
// usage: node --expose-gc peer.js PORT
'use strict';
const http = require('http');
const { WebSocketServer } = require('ws');

const port = Number(process.argv[2]);
const ROOM = /^\/(?:ws|api\/rooms)\/([A-Za-z0-9._~-]{1,64})(\/broadcast)?$/;
const rooms = new Map();
let connections = 0;
const wss = new WebSocketServer({ noServer: true, perMessageDeflate: false, clientTracking: false,
                                  maxPayload: 1 << 20 });

function json(res, status, body) {
  res.writeHead(status, { 'Content-Type': 'application/json' });
  res.end(JSON.stringify(body));
}

const server = http.createServer((req, res) => {
  if (req.method === 'GET' && req.url === '/healthz')
    return json(res, 200, { status: 'ok' });
  if (req.method === 'GET' && req.url === '/stats') {
    if (global.gc)
      global.gc();
    const m = process.memoryUsage();
    return json(res, 200, { connections, rss: m.rss, heap_used: m.heapUsed, external: m.external });
  }
  const m = ROOM.exec(req.url);
  if (req.method !== 'POST' || !m || !m[2])
    return json(res, 404, { error: { code: 'not_found' } });
  const chunks = [];
  req.on('data', (c) => chunks.push(c));
  req.on('end', () => {
    const body = Buffer.concat(chunks);
    const members = rooms.get(m[1]);
    if (members)
      for (const ws of members)
        ws.send(body, { binary: false });
    json(res, 202, { room: m[1], bytes: body.length });
  });
});

server.on('upgrade', (req, socket, head) => {
  const m = ROOM.exec(req.url);
  if (!m || m[2]) {
    socket.destroy();
    return;
  }
  wss.handleUpgrade(req, socket, head, (ws) => {
    const room = m[1];
    let members = rooms.get(room);
    if (!members)
      rooms.set(room, (members = new Set()));
    members.add(ws);
    connections++;
    ws.on('message', (data, isBinary) => {
      for (const other of members)
        if (other !== ws)
          other.send(data, { binary: isBinary });
    });
    ws.on('close', () => {
      members.delete(ws);
      connections--;
      if (members.size === 0)
        rooms.delete(room);
    });
  });
});

process.on('SIGTERM', () => {
  for (const members of rooms.values())
    for (const ws of members)
      ws.close(1001);
  server.close();
  setTimeout(() => process.exit(0), 2000).unref();
  const done = setInterval(() => {
    if (connections === 0)
      process.exit(0);
  }, 20);
  done.unref();
});

server.listen(port, '127.0.0.1');
