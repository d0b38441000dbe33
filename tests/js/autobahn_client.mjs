// The interop scenario (scenario.mjs) with Autobahn|JS, over WebSocket or (config.transport "longpoll") its
// long-poll transport. Autobahn|JS 26 uses the global WebSocket, which node 20 has only with
// --experimental-websocket (the Python test adds the flag when node needs it), and XMLHttpRequest for long-poll,
// which node lacks (xhr_shim.mjs).

import './xhr_shim.mjs';
import autobahn from 'autobahn';

import { main } from './scenario.mjs';

// node 20's WebSocket fires `error` but never `close` when the opening handshake fails (refused connection, TLS
// alert, HTTP 403); Autobahn|JS waits for `close`, so it would wait forever. Browsers and later nodes fire both:
// make node 20 do the same, so a failed connection is reported at once.
class ClosingWebSocket extends globalThis.WebSocket {
  constructor(...args) {
    super(...args);
    let closed = false;
    this.addEventListener('close', () => { closed = true; });
    this.addEventListener('error', () => setTimeout(() => {
      if (!closed && this.onclose) {
        closed = true;
        this.onclose({ code: 1006, reason: 'opening handshake failed', wasClean: false });
      }
    }, 50));
  }
}
globalThis.WebSocket = ClosingWebSocket;

const SERIALIZERS = {
  json: () => new autobahn.serializer.JSONSerializer(),
  msgpack: () => new autobahn.serializer.MsgpackSerializer(),
};

function credentials(config) {
  if (config.authmethod === 'anonymous') {
    return { authmethods: ['anonymous'] };
  }
  const onchallenge = (session, method, extra) => {
    if (method === 'ticket') {
      return config.secret;
    }
    if (method === 'wampcra') {
      const key = extra.salt
        ? autobahn.auth_cra.derive_key(config.secret, extra.salt, extra.iterations, extra.keylen)
        : config.secret;
      return autobahn.auth_cra.sign(key, extra.challenge);
    }
    throw new Error(`unexpected challenge for ${method}`);
  };
  return { authmethods: [config.authmethod], authid: config.authid, onchallenge };
}

function join(config) {
  return new Promise((resolve, reject) => {
    // Long-poll speaks JSON only (Autobahn|JS's long-poll transport has no serializer option).
    const transport = config.transport === 'longpoll'
      ? { transports: [{ type: 'longpoll', url: config.url }] }
      : { url: config.url, serializers: [SERIALIZERS[config.serializer]()] };
    const connection = new autobahn.Connection({
      ...transport,
      realm: config.realm,
      max_retries: 0,
      retry_if_unreachable: false,
      ...credentials(config),
    });
    connection.onopen = (session, details) => {
      resolve({ connection, session, welcome: details, serializer: connection.transport.info.protocol });
    };
    connection.onclose = (reason, details) => {
      // Before WELCOME this is the refusal (ABORT's reason URI in details.reason); after it, a normal close.
      reject({ abort: details.reason, message: details.message, close: reason });
      return true; // no retries
    };
    connection.open();
  });
}

async function register(joined, uri, handler) {
  await joined.session.register(uri, async (args, kwargs, details) => {
    const progress = async (pargs, pkwargs) => details.progress(pargs, pkwargs);
    try {
      const { args: rargs, kwargs: rkwargs } = await handler(args, kwargs, progress);
      return new autobahn.Result(rargs, rkwargs);
    } catch (e) {
      if (e && e.wampError) {
        throw new autobahn.Error(e.wampError, e.args, e.kwargs);
      }
      throw e;
    }
  });
}

async function subscribe(joined, topic, match, onEvent) {
  const options = match === 'exact' ? {} : { match };
  await joined.session.subscribe(topic, (args, kwargs, details) => {
    onEvent({ topic: details.topic, args, kwargs });
  }, options);
}

async function publish(joined, topic, args, kwargs, options) {
  await joined.session.publish(topic, args, kwargs, options);
}

function call(joined, uri, args, kwargs, onProgress) {
  const options = onProgress ? { receive_progress: true } : {};
  return new Promise((resolve, reject) => {
    joined.session.call(uri, args, kwargs, options).then(
      (result) => resolve(normalize(result)),
      reject,
      (progress) => { const p = normalize(progress); onProgress(p.args, p.kwargs); },
    );
  });
}

// Autobahn|JS hands a call result over as a Result only when there is more than one value; make it uniform.
function normalize(result) {
  if (result instanceof autobahn.Result) {
    return { args: result.args, kwargs: result.kwargs };
  }
  return { args: result === null || result === undefined ? [] : [result], kwargs: {} };
}

function describeError(error) {
  return { error: error.error, args: error.args, kwargs: error.kwargs };
}

function describeAbort(error) {
  return { reason: error.abort };
}

function leave(joined) {
  return new Promise((resolve) => {
    joined.connection.onclose = () => { resolve(); return true; };
    joined.connection.close();
  });
}

await main({ join, register, subscribe, publish, call, describeError, describeAbort, leave });
