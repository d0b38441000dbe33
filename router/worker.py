"""`python -m wampgate.worker CONFIG NODE PARENT_PID`: one of the `[cluster] workers` router processes. Its parent
(wampgate.tx.workers) starts it; nobody else should.

The parent passes its listening sockets the way systemd does: descriptors from 3 on, LISTEN_FDS and LISTEN_FDNAMES in
the environment. Only LISTEN_PID, this process's own id, cannot be known before the process exists, so it is set
here, before Twisted reads the three (when twisted.internet.endpoints is imported); the listeners then adopt the
sockets through the same `systemd:` endpoints socket activation uses (wampgate.endpoints). Then twistd runs in this
process: the same router, with its log as JSON lines on stdout, which the parent relays into its own log.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys

_PR_SET_PDEATHSIG = 1


def twistd_arguments(config: str, node: str) -> list[str]:
    """twistd's command line for a worker: foreground, no pid file (the parent has one), JSON log lines."""
    return ["twistd", "--nodaemon", "--pidfile=", "--logger=wampgate.tx.logs.json",
            "wampgate", "--config", config, "--worker-node", node]


def _stop_with_parent(parent_pid: int) -> None:
    """A worker must not outlive its parent (even a SIGKILLed one): the kernel sends SIGTERM, which the router
    handles as a graceful shutdown. If the parent is already gone, nothing would send it: exit now."""
    try:
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
    except (OSError, AttributeError):  # not Linux: the parent still stops its workers on SIGTERM
        pass
    if os.getppid() != parent_pid:
        raise SystemExit(f"wampgate worker: parent process {parent_pid} is gone")


def main(argv: list[str]) -> int:
    if len(argv) != 3 or not argv[2].isdigit():
        print("usage: python -m wampgate.worker CONFIG NODE PARENT_PID (started by twistd wampgate, "
              "for [cluster] workers > 1)", file=sys.stderr)
        return 2
    config, node, parent = argv
    _stop_with_parent(int(parent))
    os.environ["LISTEN_PID"] = str(os.getpid())
    from twisted.scripts.twistd import run

    sys.argv = twistd_arguments(config, node)
    run()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
