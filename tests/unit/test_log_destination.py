"""Where `twistd --logger wampgate.tx.logs.text|json` writes (wampgate.tx.logdestination): twistd calls the factory
with no arguments, so the factory reads the command line from the AppLogger calling it and chooses as twistd's own
observer does: `--logfile`, twistd.log in daemon mode, stdout with `-n`; stdout when not called by twistd.

The AppLoggers here are twistd's real UnixAppLogger, built from the options dict twistd gives it, calling the
factory the way `AppLogger.start` does (`self._observerFactory()`), without starting global logging."""

from __future__ import annotations

import io
import signal
import sys

import pytest
from twisted.logger import LogLevel
from twisted.python.logfile import LogFile
from twisted.scripts._twistd_unix import UnixAppLogger

from wampgate.tx import logdestination, logs


class TwistdLogger(UnixAppLogger):
    """twistd's UnixAppLogger; `observer()` calls the --logger factory exactly as `start()` does."""

    def observer(self):
        return self._observerFactory()


def app_logger(factory=logs.text, *, logfile: str = "", nodaemon: bool = False, syslog: bool = False):
    return TwistdLogger({"logger": factory, "logfile": logfile, "nodaemon": nodaemon, "syslog": syslog,
                         "prefix": "twisted"})


@pytest.fixture(autouse=True)
def no_signal_handlers(monkeypatch):
    """Record SIGUSR1 handlers instead of installing them in the test process."""
    installed: dict = {}
    monkeypatch.setattr(signal, "getsignal", lambda signum: installed.get(signum, signal.SIG_DFL))
    monkeypatch.setattr(signal, "signal", installed.__setitem__)
    return installed


def line(text: str) -> dict:
    return {"log_format": "{text}", "text": text, "log_level": LogLevel.info, "log_namespace": "tests",
            "log_time": 0.0}


def test_daemon_mode_with_logfile_writes_to_that_file(tmp_path, monkeypatch):
    """`twistd --logfile X --logger wampgate.tx.logs.text` (daemon mode): the observer writes its lines to X,
    not to stdout (which twistd points at /dev/null once it has daemonised)."""
    stdout = io.StringIO()
    monkeypatch.setattr(sys, "stdout", stdout)
    path = tmp_path / "wampgate.log"
    observer = app_logger(logfile=str(path)).observer()
    observer(line("to the log file"))
    assert path.read_text().endswith("] to the log file\n")
    assert stdout.getvalue() == ""


def test_daemon_mode_without_logfile_writes_twistd_log_in_the_working_directory(tmp_path, monkeypatch):
    """Daemon mode without --logfile: twistd.log in the working directory, as twistd's own observer; the JSON
    observer honours it too."""
    monkeypatch.chdir(tmp_path)
    observer = app_logger(logs.json).observer()
    observer(line("json to twistd.log"))
    assert '"message":"json to twistd.log"' in (tmp_path / "twistd.log").read_text()


def test_nodaemon_writes_to_stdout_unless_a_logfile_is_given(tmp_path, monkeypatch):
    """`-n` alone and `-n --logfile -` give stdout; `-n --logfile X` gives X."""
    stdout = io.StringIO()
    monkeypatch.setattr(sys, "stdout", stdout)
    assert logdestination.log_file_for(app_logger(nodaemon=True)) is stdout
    assert logdestination.log_file_for(app_logger(nodaemon=True, logfile="-")) is stdout
    chosen = logdestination.log_file_for(app_logger(nodaemon=True, logfile=str(tmp_path / "x.log")))
    assert isinstance(chosen, LogFile) and chosen.path == str(tmp_path / "x.log")


def test_daemon_mode_refuses_stdout_and_syslog():
    """`--logfile -` in daemon mode stops twistd as twistd itself does; `--syslog` with our observers stops it
    with a message saying what to do, instead of being ignored."""
    with pytest.raises(SystemExit, match="Daemons cannot log to stdout"):
        app_logger(logfile="-").observer()
    with pytest.raises(SystemExit, match="--syslog cannot be combined with --logger"):
        app_logger(syslog=True, nodaemon=True).observer()


def test_sigusr1_rotates_the_log_file_as_with_twistd(tmp_path, no_signal_handlers):
    """A log file gets twistd's SIGUSR1 rotation handler (when nothing else handles SIGUSR1); stdout does not."""
    app_logger(nodaemon=True).observer()
    assert no_signal_handlers == {}
    app_logger(logfile=str(tmp_path / "r.log")).observer()
    assert set(no_signal_handlers) == {signal.SIGUSR1}


def test_outside_twistd_the_destination_is_stdout(monkeypatch):
    """Called by anything but twistd's AppLogger (a test, an operator's wrapper), the observers write to stdout."""
    stdout = io.StringIO()
    monkeypatch.setattr(sys, "stdout", stdout)
    logs.text()(line("plain call"))
    assert stdout.getvalue().endswith("] plain call\n")


def test_a_lone_surrogate_from_a_client_does_not_break_the_text_log_file(tmp_path):
    """A client string with a lone surrogate is written to the (UTF-8) log file escaped, and the line after it is
    written too."""
    path = tmp_path / "wampgate.log"
    observer = app_logger(logfile=str(path)).observer()
    observer({**line("x"), "log_format": "unknown realm {realm}", "realm": "caf\u00e9\ud800"})
    observer(line("next line"))
    text = path.read_text(encoding="utf-8")
    assert "unknown realm café\\ud800\n" in text
    assert text.endswith("] next line\n")
