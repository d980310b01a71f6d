// Subscribe with the npm graphql-ws client (graphql-transport-ws), unmodified; print each result
// as one JSON line and exit after `count` of them (1 on a protocol error or close).
// usage: node subscribe.mjs ws://127.0.0.1:8000/graphql '<query>' '<variables JSON>' count
import { createClient } from 'graphql-ws';
import WebSocket from 'ws';

const [url, query, variables, count] = process.argv.slice(2);
const client = createClient({
  url,
  webSocketImpl: WebSocket,
  retryAttempts: 0,
  on: {
    connected: () => console.log(JSON.stringify({ event: 'connected' })),
    closed: (event) => console.log(JSON.stringify({ event: 'closed', code: event.code, reason: event.reason })),
  },
});
let received = 0;
try {
  for await (const result of client.iterate({ query, variables: JSON.parse(variables) })) {
    console.log(JSON.stringify({ event: 'next', result }));
    received += 1;
    if (received >= Number(count)) break;
  }
} catch (error) {
  console.log(JSON.stringify({ event: 'error', error: String(error?.message ?? JSON.stringify(error)) }));
  process.exitCode = 1;
} finally {
  await client.dispose();
}
