// TEST DOUBLE of Mastodon's streaming server (not Mastodon). Started by the real
// mastodon-streaming@.service as `node ./streaming`. Listens on BIND:PORT, answers
// /api/v1/streaming/health and accepts a websocket upgrade on /api/v1/streaming.
'use strict';

const crypto = require('crypto');
const http = require('http');

const bind = process.env.BIND || '127.0.0.1';
const port = parseInt(process.env.PORT || '4000', 10);
const WS_GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';

const server = http.createServer((req, res) => {
  if (req.url === '/api/v1/streaming/health') {
    res.writeHead(200, { 'Content-Type': 'text/plain' });
    res.end('OK');
    return;
  }
  res.writeHead(404, { 'Content-Type': 'application/json' });
  res.end(JSON.stringify({ error: 'TEST DOUBLE: only /api/v1/streaming/health and websocket upgrades' }));
});

server.on('upgrade', (req, socket) => {
  const key = req.headers['sec-websocket-key'];
  if (!req.url.startsWith('/api/v1/streaming') || !key) {
    socket.end('HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n');
    return;
  }
  const accept = crypto.createHash('sha1').update(key + WS_GUID).digest('base64');
  socket.write('HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n' +
               `Sec-WebSocket-Accept: ${accept}\r\n\r\n`);
  const payload = Buffer.from(JSON.stringify({ event: 'double', payload: 'mastodon-streaming TEST DOUBLE' }));
  socket.write(Buffer.concat([Buffer.from([0x81, payload.length]), payload]));
  socket.on('error', () => socket.destroy());
});

server.listen(port, bind, () => {
  console.log(`streaming (TEST DOUBLE of Mastodon streaming) listening on ${bind}:${port}`);
});
