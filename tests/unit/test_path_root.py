"""The listener site's path dispatch (wampgate.tx.website.PathRoot, BodilessChannel): exact paths, subtrees for
endpoints that serve one (the seam a long-poll transport uses), static files or 404 for the rest, and request bodies
only where an endpoint takes them."""

from __future__ import annotations

import autobahn.twisted  # noqa: F401  selects Twisted for txaio before autobahn's serializers are imported
from twisted.web import resource
from twisted.web.test.requesthelper import DummyRequest

from wampgate.tx.website import NOT_FOUND, BodilessChannel, PathRoot


class Leaf(resource.Resource):
    isLeaf = True


def child(root: PathRoot, path: bytes, upgrade: bytes | None = None):
    request = DummyRequest(path.lstrip(b"/").split(b"/"))
    request.path = path
    if upgrade is not None:
        request.requestHeaders.setRawHeaders(b"upgrade", [upgrade])
    return root.getChildWithDefault(request.postpath[0], request)


def test_exact_paths_subtrees_and_the_rest():
    """Exact paths first; a subtree endpoint serves the paths below its own (not itself unless listed, not a mere
    prefix like /lpx); anything else is 404 without static files."""
    ws, publish, longpoll = Leaf(), Leaf(), Leaf()
    root = PathRoot({b"/": ws, b"/publish": publish, b"/lp": longpoll, b"/lp/fixed": publish},
                    ((b"/lp/", longpoll),), None)
    assert child(root, b"/") is ws
    assert child(root, b"/publish") is publish
    assert child(root, b"/lp") is longpoll
    assert child(root, b"/lp/abc/send") is longpoll
    assert child(root, b"/lp/fixed") is publish
    assert child(root, b"/lpx") is NOT_FOUND
    assert child(root, b"/publish/x") is NOT_FOUND


def test_root_websocket_beside_static_files():
    """With static files, a plain GET / gets the static index; an upgrade to / gets the WebSocket."""
    ws, static = Leaf(), resource.Resource()
    static.putChild(b"", Leaf())
    root = PathRoot({b"/": ws}, (), static)
    assert child(root, b"/", upgrade=b"websocket") is ws
    assert child(root, b"/") is not ws


def test_body_limits_exact_and_subtree():
    """A body is taken only on an endpoint's exact path or below a subtree endpoint, within its limit."""
    channel = type("C", (BodilessChannel,), {"body_limits": {b"/publish": 100},
                                             "subtree_body_limits": ((b"/lp/", 50),)})()
    assert channel._body_limit(b"/publish") == 100
    assert channel._body_limit(b"/lp/abc/send") == 50
    assert channel._body_limit(b"/publish/x") is None
    assert channel._body_limit(b"/ws") is None
