"""The ``maeum`` command and ``python -m maeum``: ``maeum.cli.main`` behind a guard for Ctrl-C at startup.

A command loads numpy, OpenCV and ONNX Runtime before it does anything (about a second). This
module imports nothing heavy (nor does ``import maeum``), so a Ctrl-C while they load ends the
command as one during its run does, with one line and exit status 130, instead of a traceback.
"""

import sys

EXIT_INTERRUPTED = 130


def main() -> int:
    try:
        import signal  # in here, as every import: a Ctrl-C while it loads is caught below

        # Ctrl-C is held back while the CLI imports numpy and Pillow: a KeyboardInterrupt raised inside
        # a C extension's initialisation can come out as an ImportError that blames the installation
        # and keeps no trace of the Ctrl-C (numpy's does).
        pressed: list[int] = []
        held = signal.getsignal(signal.SIGINT) is signal.default_int_handler  # not when ignored, or someone else's
        if held:
            signal.signal(signal.SIGINT, lambda signum, _frame: pressed.append(signum))
        try:
            from maeum.cli import main as run
        finally:
            if held:
                signal.signal(signal.SIGINT, signal.default_int_handler)
        if pressed:
            raise KeyboardInterrupt
        return run()
    except (KeyboardInterrupt, Exception) as e:  # what cli.main's own Ctrl-C handler does not see: imports
        if not _interrupted(e):
            raise
        sys.stderr.write("maeum: interrupted\n")
        return EXIT_INTERRUPTED


def _interrupted(error: BaseException) -> bool:
    """Whether ``error`` is a Ctrl-C, or came from one.

    Python and C extensions turn a KeyboardInterrupt into another error in places: a pybind11 module
    (ONNX Runtime) interrupted while it initialises raises ``ImportError("initialization failed")``
    from it, a class body interrupted while its fields are set up a RuntimeError.
    """
    seen: list[BaseException] = []
    current: BaseException | None = error
    while current is not None and not any(current is e for e in seen):
        if isinstance(current, KeyboardInterrupt):
            return True
        seen.append(current)
        current = current.__cause__ or current.__context__
    return False


if __name__ == "__main__":
    raise SystemExit(main())
