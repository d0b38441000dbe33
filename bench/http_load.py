"""The HTTP bridge's load generator: a worker process POSTing publications to the router's `/publish` over one
kept-alive HTTP/1.1 connection (http.client), one request at a time, counting the answered ones in shared memory."""

from __future__ import annotations

import http.client
import json
import time

from bench.workers import Role, payload_text

BRIDGE_PATH = "/publish"


class HttpPublisher(Role):
    """Publishes `{"topic", "args": [payload]}` until told to stop; counts 200 answers, records any other."""

    def run(self) -> None:
        spec = self.spec
        body = json.dumps({"topic": spec["topic"], "args": [payload_text(spec["payload"])]}).encode()
        headers = {"Content-Type": "application/json", "Content-Length": str(len(body))}
        connection = http.client.HTTPConnection(self.target.host, self.target.port, timeout=10)
        self.control.send(("ready", {}))
        while self.command()[0] not in ("go", "stop", "eof"):
            pass
        published = 0
        while not self.commands and not self.control.poll():
            try:
                connection.request("POST", BRIDGE_PATH, body=body, headers=headers)
                reply = connection.getresponse()
                reply.read()
            except (OSError, http.client.HTTPException) as e:
                self.error(f"request failed: {e!r}")
                connection.close()
                time.sleep(0.01)
                continue
            if reply.status == 200:
                published += 1
                self.counters[self.index] = published
            else:
                self.error(f"HTTP {reply.status}")
        connection.close()
        self.report(published=published)
