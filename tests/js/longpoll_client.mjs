// Autobahn|JS over its long-poll transport against a Wampgate whose other peer is a Python WebSocket session, for
// tests/integration/test_js_longpoll.py.
//
// Input: one JSON argument: url (the long-poll base URL), realm, timeout (s). Output: ONE line of JSON with what
// happened, in order; the Python test compares it exactly.
//
// 1. Join over long-poll; subscribe com.lp.to_js and register com.lp.js.echo; call the Python peer's
//    com.lp.py.add; ask it to publish to us (com.lp.py.publish) and wait for that event; ask it to call our
//    com.lp.js.echo (com.lp.py.call_js); publish com.lp.from_js (acknowledged) for it.
// 2. Ask the Python peer to drop our transport (com.lp.py.drop_me, as a proxy cutting the connection would):
//    Autobahn|JS sees the connection lost and reconnects by itself, opening a new long-poll transport; the new
//    session calls com.lp.py.add again, then leaves (GOODBYE, close).
// 3. A new connection joins after that close and calls com.lp.py.add once more.

import './xhr_shim.mjs';
import autobahn from 'autobahn';

import { readConfig, report, startWatchdog } from './scenario.mjs';

const config = readConfig();
startWatchdog(config.timeout || 30);

function connect(retries) {
  return new autobahn.Connection({
    transports: [{ type: 'longpoll', url: config.url }],
    realm: config.realm,
    authmethods: ['anonymous'],
    max_retries: retries,
    initial_retry_delay: 0.2,
    retry_delay_jitter: 0,
    retry_if_unreachable: false,
  });
}

function unwrap(result) {
  return result instanceof autobahn.Result ? { args: result.args, kwargs: result.kwargs } : result;
}

async function firstSession(session, log) {
  let gotEvent;
  const event = new Promise((resolve) => { gotEvent = resolve; });
  await session.subscribe('com.lp.to_js', (args, kwargs) => gotEvent({ args, kwargs }));
  await session.register('com.lp.js.echo', (args, kwargs) => new autobahn.Result([...args].reverse(),
                                                                                 { ...kwargs, by: 'js' }));
  log.push({ add: await session.call('com.lp.py.add', [2, 3]) });
  await session.call('com.lp.py.publish', ['hello from python']);
  log.push({ event: await event });
  log.push({ echo: unwrap(await session.call('com.lp.py.call_js', [1, 'two', 3], { k: 'v' })) });
  await session.publish('com.lp.from_js', ['hello from js'], { n: 1 }, { acknowledge: true });
  log.push({ published: true });
  log.push({ drop: await session.call('com.lp.py.drop_me', [session.id]) });
}

async function run() {
  const log = [];
  const connection = connect(3);
  let opens = 0;
  await new Promise((resolve, reject) => {
    connection.onopen = (session, details) => {
      opens += 1;
      log.push({ open: opens, protocol: details.transport.protocol, type: details.transport.type,
                 authrole: details.authrole });
      const step = opens === 1 ? firstSession(session, log) : secondSession(session);
      step.catch((error) => reject(error));
    };
    connection.onclose = (reason, details) => {
      log.push({ close: reason, will_retry: details.will_retry });
      if (reason === 'closed') resolve();
      if (!details.will_retry && reason !== 'closed') reject(new Error(`gave up: ${reason}`));
      return false;
    };
    connection.open();
  });

  async function secondSession(session) {
    log.push({ add: await session.call('com.lp.py.add', [40, 2]) });
    connection.close();
  }

  const again = connect(0);
  await new Promise((resolve, reject) => {
    again.onopen = async (session) => {
      try {
        log.push({ reopened: true, add: await session.call('com.lp.py.add', [1, 1]) });
        again.close();
      } catch (error) {
        reject(error);
      }
    };
    again.onclose = (reason) => {
      log.push({ close: reason });
      if (reason === 'closed') resolve(); else reject(new Error(reason));
      return true;
    };
    again.open();
  });
  return log;
}

try {
  report({ log: await run() });
  process.exit(0);
} catch (error) {
  report({ failure: String(error && error.stack ? error.stack : JSON.stringify(error)) });
  process.exit(2);
}
