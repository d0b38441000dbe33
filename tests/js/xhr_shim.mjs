// XMLHttpRequest for node, over fetch: Autobahn|JS's long-poll transport posts with XMLHttpRequest, which browsers
// have and node does not. Only what that transport uses: open, setRequestHeader, send, timeout, ontimeout,
// onreadystatechange, status, statusText, responseText.
//
// Autobahn|JS posts every message as its own request without waiting for the one before; over several HTTP
// connections two sends can then reach the router in either order (a browser behaves the same). This shim sends
// the `/send` requests of one process one after another, so the tests see the order the client meant.

let sending = Promise.resolve();

class FetchXMLHttpRequest {
  constructor() {
    this.readyState = 0;
    this.status = 0;
    this.statusText = '';
    this.responseText = '';
    this.timeout = 0;
    this.withCredentials = false;
    this.onreadystatechange = null;
    this.ontimeout = null;
    this._headers = {};
  }

  open(method, url) {
    this._method = method;
    this._url = url;
    this.readyState = 1;
  }

  setRequestHeader(name, value) {
    this._headers[name] = value;
  }

  send(body) {
    const request = () => this._fetch(body);
    if (this._url.endsWith('/send')) {
      sending = sending.then(request, request);
    } else {
      request();
    }
  }

  async _fetch(body) {
    const controller = new AbortController();
    const timer = this.timeout > 0 ? setTimeout(() => controller.abort(), this.timeout) : null;
    let timedOut = false;
    try {
      const response = await fetch(this._url, {
        method: this._method, headers: this._headers, body: body ?? undefined, signal: controller.signal,
      });
      this.responseText = await response.text();
      this.status = response.status;
      this.statusText = response.statusText;
    } catch (error) {
      this.status = 0;
      timedOut = controller.signal.aborted;
    } finally {
      if (timer) clearTimeout(timer);
    }
    this.readyState = 4;
    if (this.onreadystatechange) this.onreadystatechange();
    if (timedOut && this.ontimeout) this.ontimeout();
  }
}

if (typeof globalThis.XMLHttpRequest === 'undefined') {
  globalThis.XMLHttpRequest = FetchXMLHttpRequest;
}
