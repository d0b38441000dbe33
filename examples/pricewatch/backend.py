"""Pricewatch's backend: a WAMP component that publishes price ticks and answers quotes, through Wampgate.

It joins realm `pricewatch` over RawSocket on the router's backend listener (loopback, WAMP-CRA; browsers never see
that port), then
- publishes one tick a second (`--interval`) on `com.pricewatch.tick`, cycling through the symbols: kwargs
  `symbol`, `price` (in currency units, two decimals), `change` (since that symbol's previous tick) and `seq` (that
  symbol's tick count);
- answers `com.pricewatch.quote(symbol)` with the symbol's last tick and its session high and low, or the error
  `com.pricewatch.error.unknown_symbol`.

Prices are a random walk kept in integer cents, so what the page shows is exact. The backend's WAMP-CRA password is
the demo's, committed in pricewatch.toml as a derived key: set PRICEWATCH_BACKEND_SECRET (and the toml's
derived_key) to anything else for real use.

    python examples/pricewatch/backend.py [--router rs://127.0.0.1:8089] [--interval 1.0]
"""

from __future__ import annotations

import argparse
import os
import random
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from autobahn.twisted.component import Component, run
from autobahn.wamp.exception import ApplicationError
from twisted.internet import task

REALM = "pricewatch"
TICK_TOPIC = "com.pricewatch.tick"
QUOTE_PROCEDURE = "com.pricewatch.quote"
UNKNOWN_SYMBOL = "com.pricewatch.error.unknown_symbol"
BACKEND_AUTHID = "backend"
DEMO_BACKEND_SECRET = "pricewatch-backend-demo"  # matches derived_key in pricewatch.toml; demo only

# symbol -> (company, opening price in cents)
SYMBOLS = {
    "WGT": ("Wampgate Networks", 10125),
    "TWX": ("Twisted Matrix Labs", 4210),
    "ABN": ("Autobahn Logistics", 7788),
    "CRB": ("Crossbar Freight", 2650),
}
MAX_STEP_CENTS = 35  # the largest move of one tick
FLOOR_CENTS = 100  # prices never fall below 1.00


@dataclass(frozen=True)
class Tick:
    symbol: str
    price_cents: int
    change_cents: int
    seq: int

    def payload(self) -> dict:
        """The tick as published: prices in currency units (exact to the cent)."""
        return {"symbol": self.symbol, "price": self.price_cents / 100, "change": self.change_cents / 100,
                "seq": self.seq}


@dataclass
class PriceFeed:
    """Random-walk prices, one symbol per tick in turn; remembers every tick (a demo runs for minutes, not days)."""

    rng: random.Random
    history: dict[str, list[Tick]] = field(default_factory=lambda: {symbol: [] for symbol in SYMBOLS})
    _turn: int = 0

    def next_tick(self) -> Tick:
        symbol = list(SYMBOLS)[self._turn % len(SYMBOLS)]
        self._turn += 1
        ticks = self.history[symbol]
        previous = ticks[-1].price_cents if ticks else SYMBOLS[symbol][1]
        price = max(FLOOR_CENTS, previous + self.rng.randint(-MAX_STEP_CENTS, MAX_STEP_CENTS))
        tick = Tick(symbol, price, price - previous, len(ticks) + 1)
        ticks.append(tick)
        return tick

    def quote(self, symbol: str) -> dict:
        """The last tick of `symbol` with its high and low so far; ApplicationError for an unknown symbol."""
        if not isinstance(symbol, str) or symbol.upper() not in SYMBOLS:
            raise ApplicationError(UNKNOWN_SYMBOL, f"no such symbol: {str(symbol)[:20]}")
        symbol = symbol.upper()
        ticks = self.history[symbol]
        if not ticks:
            opening = SYMBOLS[symbol][1]
            ticks = [Tick(symbol, opening, 0, 0)]
        prices = [t.price_cents for t in ticks]
        return {**ticks[-1].payload(), "company": SYMBOLS[symbol][0], "high": max(prices) / 100,
                "low": min(prices) / 100}


class PriceBoard:
    """The WAMP side: registers the quote procedure on join and publishes a tick every `interval` seconds."""

    def __init__(self, feed: PriceFeed, interval: float, clock=None):
        self.feed = feed
        self.interval = interval
        self.clock = clock
        self.published: list[Tick] = []
        self._loop: task.LoopingCall | None = None

    async def joined(self, session, details) -> None:
        await session.register(self.feed.quote, QUOTE_PROCEDURE)
        self._loop = task.LoopingCall(self._publish_next, session)
        if self.clock is not None:
            self._loop.clock = self.clock
        self._loop.start(self.interval, now=True)

    def left(self, session, details) -> None:
        if self._loop is not None and self._loop.running:
            self._loop.stop()
        self._loop = None

    def _publish_next(self, session) -> None:
        if not session.is_attached():
            return
        tick = self.feed.next_tick()
        session.publish(TICK_TOPIC, **tick.payload())
        self.published.append(tick)


def make_component(router: str, board: PriceBoard, *, secret: str, max_retries: int = -1) -> Component:
    """The backend component, connecting to `router` (rs://host:port) as `backend` with WAMP-CRA."""
    address = urlsplit(router)
    if address.scheme != "rs" or not address.hostname or not address.port:
        raise ValueError(f"expected a RawSocket URL such as rs://127.0.0.1:8089, not {router!r}")
    transport = {
        "type": "rawsocket",
        "url": router,
        "endpoint": {"type": "tcp", "host": address.hostname, "port": address.port, "timeout": 10},
        "serializer": "msgpack",
        "max_retries": max_retries,
    }
    component = Component(
        transports=[transport],
        realm=REALM,
        authentication={"wampcra": {"authid": BACKEND_AUTHID, "secret": secret}},
    )
    component.on_join(board.joined)
    component.on_leave(board.left)
    return component


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Pricewatch backend: publishes prices, answers quotes")
    parser.add_argument("--router", default="rs://127.0.0.1:8089", help="the router's backend RawSocket listener")
    parser.add_argument("--interval", type=float, default=1.0, help="seconds between ticks")
    options = parser.parse_args(argv)
    secret = os.environ.get("PRICEWATCH_BACKEND_SECRET", DEMO_BACKEND_SECRET)
    board = PriceBoard(PriceFeed(random.Random()), options.interval)
    run([make_component(options.router, board, secret=secret)])


if __name__ == "__main__":
    main()
