"""An Autobahn *asyncio* client that logs in with WAMP-SCRAM (Autobahn's own `AuthScram`) or cryptosign (Autobahn's
`CryptosignKey`, optionally bound to the TLS channel with `tls-unique` as Autobahn's asyncio transport computes it),
run as a subprocess by tests/integration/test_scram_and_binding.py (txaio binds one framework per process).

It joins, checks the router's SCRAM server signature with `AuthScram.on_welcome`, leaves, and prints ONE line of
JSON: {"authid", "authrole", "authmethod", "authprovider", "server_verified"} or {"error", "reason"}.

Usage: asyncio_auth_client.py URL --authid ID (--password PW | --privkey HEX [--binding tls-unique])
       [--ca CA_PEM] [--tls12] [--realm REALM]

Whatever happens, the process exits within HARD_LIMIT seconds (exit status 3 on timeout, 2 on error, 0 on success).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import ssl
import sys
import threading

HARD_LIMIT = 10.0


def _print(result: dict) -> None:
    print(json.dumps(result, sort_keys=True, separators=(",", ":")), flush=True)


def _exit_after(seconds: float) -> None:
    def stop():
        _print({"error": "timeout"})
        os._exit(3)

    timer = threading.Timer(seconds, stop)
    timer.daemon = True
    timer.start()


def _tls_context(options):
    if options.ca is None:
        return None
    context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=options.ca)
    if options.tls12:
        context.maximum_version = ssl.TLSVersion.TLSv1_2
    return context


def _session_class(options):
    from autobahn.asyncio.wamp import ApplicationSession
    from autobahn.wamp.auth import AuthScram

    class Login(ApplicationSession):
        def onConnect(self):
            extra = {}
            if options.password is not None:
                self.scram = AuthScram(authid=options.authid, password=options.password)
                method, extra = "scram", self.scram.authextra
            else:
                from autobahn.wamp.cryptosign import CryptosignKey

                self.key = CryptosignKey.from_bytes(bytes.fromhex(options.privkey))
                method = "cryptosign"
                if options.binding:
                    extra["channel_binding"] = options.binding
            self.join(self.config.realm, authmethods=[method], authid=options.authid, authextra=extra)

        def onChallenge(self, challenge):
            if challenge.method == "scram":
                return self.scram.on_challenge(self, challenge)
            channel_id = None
            if options.binding:
                channel_id = self._transport.transport_details.channel_id.get(options.binding)
            return self.key.sign_challenge(challenge, channel_id=channel_id, channel_id_type=options.binding)

        def onJoin(self, details):
            verified = None
            if details.authmethod == "scram":
                verified = self.scram.on_welcome(self, details.authextra) is None
            self.config.extra["done"].set_result({
                "authid": details.authid, "authrole": details.authrole, "authmethod": details.authmethod,
                "authprovider": details.authprovider, "server_verified": verified,
            })
            self.leave()

        def onLeave(self, details):
            done = self.config.extra["done"]
            if not done.done():
                done.set_result({"error": "left", "reason": details.reason})
            self.disconnect()

    return Login


async def _run(options) -> dict:
    from autobahn.asyncio.wamp import ApplicationRunner

    done = asyncio.get_running_loop().create_future()
    runner = ApplicationRunner(options.url, options.realm, extra={"done": done}, ssl=_tls_context(options))
    await runner.run(_session_class(options), start_loop=False)
    return await done


def main(argv: list[str]) -> int:
    _exit_after(HARD_LIMIT)
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("url")
    parser.add_argument("--authid", required=True)
    parser.add_argument("--password")
    parser.add_argument("--privkey")
    parser.add_argument("--binding", default=None)
    parser.add_argument("--ca", default=None)
    parser.add_argument("--tls12", action="store_true")
    parser.add_argument("--realm", default="realm1")
    options = parser.parse_args(argv)

    import txaio

    txaio.use_asyncio()
    try:
        result = asyncio.run(_run(options))
    except Exception as e:
        result = {"error": f"{type(e).__name__}: {e}"}
    _print(result)
    return 2 if "error" in result else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
