// Pricewatch's page: sign in with a password (WAMP ticket) or a JWT, then show live prices and ask for quotes.
// The WebSocket is on the page's own origin (same host and port, path /ws), which the router's Origin allow-list
// accepts; the same page loaded from any other origin is refused at the WebSocket handshake. Where the browser cannot
// create a WebSocket, Autobahn|JS falls back to WAMP long-poll on the same origin (path /lp), under the same
// allow-list. (A WebSocket that can be created but fails to connect is not retried over long-poll: Autobahn|JS picks
// the first transport it can create.)
'use strict';

const REALM = 'pricewatch';
const TICK_TOPIC = 'com.pricewatch.tick';
const QUOTE_PROCEDURE = 'com.pricewatch.quote';
const ROUTER_URL = (location.protocol === 'https:' ? 'wss://' : 'ws://') + location.host + '/ws';
const LONGPOLL_URL = location.origin + '/lp';
const TRANSPORTS = [{ type: 'websocket', url: ROUTER_URL }, { type: 'longpoll', url: LONGPOLL_URL }];
const TRANSPORT_NAMES = { websocket: 'WebSocket', longpoll: 'long-poll' };

const $ = (id) => document.getElementById(id);
let connection = null;
let session = null;
let updates = 0;

function formatPrice(value) {
  return value.toFixed(2);
}

function formatChange(value) {
  if (value > 0) return '+' + value.toFixed(2);
  if (value < 0) return '\u2212' + Math.abs(value).toFixed(2);
  return '0.00';
}

function selectedMethod() {
  return $('method-jwt').checked ? 'jwt' : 'ticket';
}

function showMethodFields() {
  const jwt = selectedMethod() === 'jwt';
  $('ticket-fields').hidden = jwt;
  $('jwt-fields').hidden = !jwt;
}

// The configured URL of the transport Autobahn|JS chose (its own info has the long-poll URL only once open).
function transportUrl(type) {
  const transport = TRANSPORTS.find((t) => t.type === type);
  return transport ? transport.url : ROUTER_URL;
}

function setSignedIn(details) {
  $('status').textContent = `Signed in as ${details.authid} (role ${details.authrole}, via ${details.authmethod})`;
  const type = details.transport ? details.transport.type : 'none';
  $('transport').textContent = `Connected over ${TRANSPORT_NAMES[type] || type} (${transportUrl(type)})`;
  $('transport').dataset.transport = type;
  $('status').classList.add('online');
  $('login').hidden = true;
  $('board-section').hidden = false;
}

function setSignedOut(message) {
  session = null;
  connection = null;
  $('status').textContent = 'Not signed in';
  $('status').classList.remove('online');
  $('login').hidden = false;
  $('board-section').hidden = true;
  $('transport').textContent = '';
  delete $('transport').dataset.transport;
  $('login-button').disabled = false;
  $('login-error').textContent = message || '';
}

function onTick(args, kwargs) {
  const row = document.querySelector(`#board tr[data-symbol="${kwargs.symbol}"]`);
  if (!row) return;
  row.querySelector('.price').textContent = formatPrice(kwargs.price);
  const change = row.querySelector('.change');
  change.textContent = formatChange(kwargs.change);
  change.className = 'num change ' + (kwargs.change > 0 ? 'up' : kwargs.change < 0 ? 'down' : '');
  row.querySelector('.seq').textContent = String(kwargs.seq);
  row.classList.remove('flash');
  void row.offsetWidth; // restart the highlight animation
  row.classList.add('flash');
  updates += 1;
  $('updates').textContent = `${updates} live update${updates === 1 ? '' : 's'} received`;
}

function describeQuote(quote) {
  return `${quote.symbol} ${formatPrice(quote.price)} (tick ${quote.seq}; high ${formatPrice(quote.high)}, ` +
         `low ${formatPrice(quote.low)})`;
}

function describeError(error) {
  const text = error && error.args && error.args.length ? `: ${error.args[0]}` : '';
  return `${error && error.error ? error.error : 'error'}${text}`;
}

async function getQuote(event) {
  event.preventDefault();
  $('quote-result').textContent = '';
  $('quote-error').textContent = '';
  const symbol = $('quote-symbol').value.trim();
  try {
    const result = await session.call(QUOTE_PROCEDURE, [symbol]);
    $('quote-result').textContent = describeQuote(result.kwargs || result);
  } catch (error) {
    $('quote-error').textContent = describeError(error);
  }
}

function credentials() {
  if (selectedMethod() === 'jwt') {
    const token = $('token').value.trim();
    return { authmethods: ['jwt'], onchallenge: () => token };
  }
  const password = $('password').value;
  return { authmethods: ['ticket'], authid: $('authid').value.trim(), onchallenge: () => password };
}

function signIn(event) {
  event.preventDefault();
  $('login-error').textContent = '';
  $('login-button').disabled = true;
  let joined = false;
  let tried = null; // the transport type Autobahn|JS is trying (null until open() has created one)
  const opening = new autobahn.Connection({
    transports: TRANSPORTS.map((transport) => ({ ...transport })), // Autobahn|JS fills in defaults: give it copies
    realm: REALM,
    max_retries: 0,
    retry_if_unreachable: false,
    ...credentials(),
  });
  connection = opening;
  connection.onopen = (newSession, details) => {
    joined = true;
    session = newSession;
    updates = 0;
    setSignedIn(details);
    session.subscribe(TICK_TOPIC, onTick).catch((error) => {
      $('updates').textContent = 'Cannot subscribe: ' + describeError(error);
    });
  };
  connection.onclose = (reason, details) => {
    if (joined) {
      setSignedOut(reason === 'closed' ? '' : `Connection ${reason}: sign in again`);
    } else if (details && details.reason) {
      setSignedOut(`Login failed: ${details.reason}`);
    } else if (reason === 'unsupported') {
      setSignedOut('Cannot connect: this browser can use neither WebSocket nor long-poll');
    } else {
      setSignedOut(`Cannot connect to ${transportUrl(tried)}`);
    }
    return true; // never retry on our own
  };
  opening.open();
  tried = opening.transport.info.type;
}

function signOut() {
  if (connection) connection.close();
}

$('login-form').addEventListener('submit', signIn);
$('quote-form').addEventListener('submit', getQuote);
$('logout').addEventListener('click', signOut);
$('method-ticket').addEventListener('change', showMethodFields);
$('method-jwt').addEventListener('change', showMethodFields);
showMethodFields();
