// The interop scenario (scenario.mjs) with wampy.js, which takes its WebSocket implementation as an option under
// node: the `ws` package here (so it needs no experimental flag on any node version).
//
// Two wampy 8.0.2 bugs are worked around below (announcing progressive results, SUBSCRIBE options under
// MessagePack); a third cannot be: its publish() drops `exclude_me: false` (it copies only truthy options), so the
// router applies the default publisher exclusion and a wampy publisher never gets its own event. The Python test
// expects exactly that for wampy.

import { Wampy } from 'wampy';
import { JsonSerializer } from 'wampy/JsonSerializer.js';
import { MsgpackSerializer } from 'wampy/MsgpackSerializer.js';
import { sign as craSign } from 'wampy/wampcra.js';
import WebSocket from 'ws';

import { main } from './scenario.mjs';

const SERIALIZERS = { json: () => new JsonSerializer(), msgpack: () => new MsgpackSerializer() };

function credentials(config) {
  if (config.authmethod === 'anonymous') {
    return {};
  }
  const onChallenge = config.authmethod === 'wampcra'
    ? craSign(config.secret)
    : (method) => {
      if (method !== 'ticket') throw new Error(`unexpected challenge for ${method}`);
      return config.secret;
    };
  return { authid: config.authid, authmethods: [config.authmethod], onChallenge };
}

async function join(config) {
  const wampy = new Wampy(config.url, {
    realm: config.realm,
    ws: WebSocket,
    serializer: SERIALIZERS[config.serializer](),
    autoReconnect: false,
    debug: false,
    ...credentials(config),
  });
  // wampy 8.0.2 can send progressive results (result_handler with { progress: true }) but its HELLO does not
  // announce progressive_call_results for the callee role, so a router that follows the spec (Wampgate does) never
  // asks it for them and drops the ones it sends anyway. Announce what the library does implement.
  wampy._wamp_features.roles.callee.features.progressive_call_results = true;
  const welcome = await wampy.connect();
  return { wampy, welcome, serializer: wampy._ws.protocol };
}

async function register(joined, uri, handler) {
  await joined.wampy.register(uri, async ({ argsList, argsDict, result_handler: send }) => {
    const progress = async (args, kwargs) => send({ argsList: args, argsDict: kwargs, options: { progress: true } });
    try {
      const { args, kwargs } = await handler(argsList || [], argsDict || {}, progress);
      return { argsList: args, argsDict: kwargs };
    } catch (e) {
      if (e && e.wampError) {
        throw { error: e.wampError, argsList: e.args, argsDict: e.kwargs, details: {} };
      }
      throw e;
    }
  });
}

async function subscribe(joined, topic, match, onEvent) {
  // wampy 8.0.2 puts `match` and `get_retained` into SUBSCRIBE's options even when they are undefined. JSON drops
  // undefined values, but msgpackr encodes them as its private extension type 0, which no router can take as a
  // string or boolean (Wampgate answers with a protocol violation, as it should). So always give both values.
  const options = { match, get_retained: false };
  await joined.wampy.subscribe(topic, ({ details, argsList, argsDict }) => {
    onEvent({ topic: details.topic || topic, args: argsList || [], kwargs: argsDict || {} });
  }, options);
}

async function publish(joined, topic, args, kwargs, options) {
  const { acknowledge, ...wampyOptions } = options; // wampy always asks for an acknowledgement
  await joined.wampy.publish(topic, { argsList: args, argsDict: kwargs }, wampyOptions);
}

async function call(joined, uri, args, kwargs, onProgress) {
  const options = onProgress
    ? { progress_callback: ({ argsList, argsDict }) => onProgress(argsList || [], argsDict || {}) }
    : {};
  const { argsList, argsDict } = await joined.wampy.call(uri, { argsList: args, argsDict: kwargs }, options);
  return { args: argsList || [], kwargs: argsDict || {} };
}

function describeError(error) {
  return { error: error.errorUri, args: error.argsList, kwargs: error.argsDict };
}

function describeAbort(error) {
  return { reason: error.errorUri };
}

async function leave(joined) {
  await joined.wampy.disconnect();
}

await main({ join, register, subscribe, publish, call, describeError, describeAbort, leave });
