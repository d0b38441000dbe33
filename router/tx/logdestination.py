"""Where `twistd --logger wampgate.tx.logs.text|json` writes: the file twistd itself would have written to.

twistd hands a `--logger` factory nothing: `twisted.application.app.AppLogger.start` calls it with no arguments
(Twisted 26.10), and only its own observer (`_getLogObserver`) looks at `--logfile`, `--nodaemon` and `--syslog`. A
factory that simply wrote to stdout therefore wrote to /dev/null once twistd had daemonised, and no twistd.log
appeared. So the factory asks the AppLogger that is calling it (the object twistd built from its command line)
and chooses as `twisted.scripts._twistd_unix.UnixAppLogger._getLogObserver` does:

- `-n` without `--logfile`, or `--logfile -` with `-n`: stdout (systemd's journal, a container's log);
- otherwise the `--logfile` path (default `twistd.log` in the working directory), a `twisted.python.logfile.LogFile`
  as twistd's own (rotated at 1 MB, and on SIGUSR1);
- `--logfile -` in daemon mode, or `--syslog`: twistd is stopped with a message, as twistd itself stops for the first
  (our observers do not write to syslog; without `--logger`, twistd's own observer does).

The file is opened before twistd daemonises (twistd starts the logger first), so `--uid`/`--chroot` do not stop it.
Called outside twistd (tests, an operator's own wrapper that passes nothing), the destination is stdout.
"""

from __future__ import annotations

import signal
import sys
from typing import IO, Any

from twisted.python.logfile import LogFile

DEFAULT_LOG_FILE = "twistd.log"  # twistd's own default in daemon mode
_FRAMES = 10  # how far up the stack the calling AppLogger is looked for (it is the factory's direct caller)


def twistd_log_file() -> IO[Any]:
    """The file the calling twistd wants its log in (stdout when not called by twistd)."""
    return log_file_for(_calling_app_logger())


def log_file_for(app_logger: Any) -> IO[Any]:
    """The destination for `app_logger`'s command line (None: not twistd, so stdout). Raises SystemExit for a
    combination our observers cannot honour, as twistd does for `--logfile -` in daemon mode."""
    if app_logger is None:
        return sys.stdout
    # AppLogger (every platform) has _logfilename; UnixAppLogger adds _nodaemon and _syslog.
    name = getattr(app_logger, "_logfilename", "") or ""
    nodaemon = getattr(app_logger, "_nodaemon", True)
    if getattr(app_logger, "_syslog", False):
        raise SystemExit("--syslog cannot be combined with --logger wampgate.tx.logs.*: these observers write to "
                         "--logfile (or stdout with -n); drop --logger to use twistd's own syslog observer")
    if name == "-":
        if not nodaemon:
            raise SystemExit("Daemons cannot log to stdout, exiting!")
        return sys.stdout
    if nodaemon and not name:
        return sys.stdout
    log_file = LogFile.fromFullPath(name or DEFAULT_LOG_FILE)
    _rotate_on_sigusr1(log_file)
    return log_file


def _rotate_on_sigusr1(log_file: LogFile) -> None:
    """As twistd does for its own log file: SIGUSR1 rotates it, unless something else already handles SIGUSR1."""
    sigusr1 = getattr(signal, "SIGUSR1", None)  # not on Windows
    if sigusr1 is None or signal.getsignal(sigusr1) not in (None, signal.SIG_DFL):
        return

    def rotate(signum, frame) -> None:
        from twisted.internet import reactor

        reactor.callFromThread(log_file.rotate)

    signal.signal(sigusr1, rotate)


def _calling_app_logger() -> Any:
    """The twistd AppLogger among our callers, or None."""
    from twisted.application.app import AppLogger

    frame = sys._getframe(1)
    try:
        for _ in range(_FRAMES):
            if frame is None:
                return None
            candidate = frame.f_locals.get("self")
            if isinstance(candidate, AppLogger):
                return candidate
            frame = frame.f_back
        return None
    finally:
        del frame  # a frame held in a local would keep every caller's locals alive in a cycle
