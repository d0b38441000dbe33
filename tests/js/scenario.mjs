// The interop scenario both JavaScript clients run against a real Wampgate, written once against a small adapter
// per library (autobahn_client.mjs, wampy_client.mjs), so both are asked exactly the same things.
//
// Input: one JSON argument (from tests/integration/test_js_clients.py) with the URL, realm, serializer, the
// credentials and the payloads to send. Output: ONE line of JSON on stdout with what arrived, which the Python test
// compares with what it expects, exactly. Anything else the libraries log goes to stderr. A watchdog ends the
// process with a JSON error line if the router never answers, so the test cannot hang on node.
//
// Two sessions join with the same credentials. The callee registers the procedures, subscribes to the exact topic
// and publishes on a topic under the prefix; the subscriber subscribes to the exact topic and the prefix, publishes
// on the exact topic with exclude_me=false, and calls the callee's procedures.

export function readConfig() {
  if (process.argv.length < 3) {
    throw new Error('usage: node <client script> \'{"url": ..., "realm": ..., ...}\'');
  }
  return JSON.parse(process.argv[2]);
}

export function report(result) {
  process.stdout.write(JSON.stringify(result) + '\n');
}

// Not unref'd: a client whose connection fails without a close event (node 20's WebSocket after a refused
// handshake) would otherwise let node exit silently with nothing reported.
export function startWatchdog(seconds) {
  setTimeout(() => {
    report({ failure: `no complete answer within ${seconds} s` });
    process.exit(3);
  }, seconds * 1000);
}

// A value that resolves once `count` values have been pushed.
function collector(count) {
  const items = [];
  let done;
  const full = new Promise((resolve) => { done = resolve; });
  return {
    items,
    full,
    push(item) {
      items.push(item);
      if (items.length >= count) done(items);
    },
  };
}

function welcomeSummary(details) {
  return { authid: details.authid, authrole: details.authrole, authmethod: details.authmethod,
           authprovider: details.authprovider };
}

// The procedures the callee registers; `progress(args, kwargs)` sends one progressive result.
function procedures(payloads) {
  return {
    'com.interop.echo': async (args, kwargs) => ({ args: ['echo', ...args], kwargs: { ...kwargs, echoed: true } }),
    'com.interop.countdown': async (args, kwargs, progress) => {
      for (let n = args[0]; n > 0; n -= 1) {
        await progress([n], { remaining: n });
      }
      return { args: ['liftoff'], kwargs: { from: args[0] } };
    },
    'com.interop.fail': async () => {
      const e = payloads.error;
      throw { wampError: e.uri, args: e.args, kwargs: e.kwargs };
    },
  };
}

// Run the whole scenario with `client` (an adapter) and report what arrived.
export async function runScenario(client, config) {
  const { payloads } = config;
  const callee = await client.join(config);
  const subscriber = await client.join(config);
  const result = { welcome: welcomeSummary(subscriber.welcome), serializer: subscriber.serializer };

  for (const [uri, handler] of Object.entries(procedures(payloads))) {
    await client.register(callee, uri, handler);
  }

  // Both sessions subscribe to the exact topic; the subscriber publishes there with exclude_me=false, so both
  // should get the event. The publisher's own copy is read only after later round trips (the calls below), so a
  // client that never gets it (see wampy_client.mjs) shows up as a missing event, not as a hang.
  const exact = collector(1);
  const exactAtCallee = collector(1);
  const prefix = collector(1);
  await client.subscribe(subscriber, 'com.interop.news', 'exact', (event) => exact.push(event));
  await client.subscribe(callee, 'com.interop.news', 'exact', (event) => exactAtCallee.push(event));
  await client.subscribe(subscriber, 'com.interop.feed', 'prefix', (event) => prefix.push(event));

  await client.publish(subscriber, 'com.interop.news', payloads.news.args, payloads.news.kwargs,
                       { exclude_me: false, acknowledge: true });
  await client.publish(callee, 'com.interop.feed.sports', payloads.feed.args, payloads.feed.kwargs,
                       { acknowledge: true });
  result.exact_events_other = await exactAtCallee.full;
  result.prefix_events = await prefix.full;
  result.exact_events = exact.items;

  result.echo = await client.call(subscriber, 'com.interop.echo', payloads.call.args, payloads.call.kwargs);

  const progress = [];
  const final = await client.call(subscriber, 'com.interop.countdown', [3], {},
                                  (args, kwargs) => progress.push({ args, kwargs }));
  result.countdown = { progress, final };

  try {
    const unexpected = await client.call(subscriber, 'com.interop.fail', [], {});
    result.fail = { unexpected_result: unexpected };
  } catch (error) {
    result.fail = client.describeError(error);
  }

  await client.leave(subscriber);
  await client.leave(callee);
  return result;
}

// Join with credentials expected to be refused; report the ABORT reason.
export async function runRefusal(client, config) {
  try {
    const session = await client.join(config);
    await client.leave(session);
    return { joined: welcomeSummary(session.welcome) };
  } catch (error) {
    return { refused: client.describeAbort(error) };
  }
}

export async function main(client) {
  const config = readConfig();
  startWatchdog(config.timeout || 20);
  try {
    const result = config.expect === 'refusal' ? await runRefusal(client, config) : await runScenario(client, config);
    report(result);
    process.exit(0);
  } catch (error) {
    report({ failure: String(error && error.stack ? error.stack : JSON.stringify(error)) });
    process.exit(2);
  }
}
