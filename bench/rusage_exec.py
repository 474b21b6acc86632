"""Run a command and write its rusage to a file: ``python -I -S rusage_exec.py OUT -- argv...``.

Why a wrapper: Linux keeps a process's ``ru_maxrss`` across exec, so a child forked straight from
the harness (tens of MB of imports) would report at least the harness's RSS. Forked from this
small interpreter (-I -S, standard library only), the floor is ~9 MB. OUT receives one line:
``<exit code> <peak RSS KiB> <user s> <system s>``. Exits with the command's exit code.
"""

import os
import sys


def main() -> int:
    out, separator, argv = sys.argv[1], sys.argv[2], sys.argv[3:]
    if separator != "--" or not argv:
        sys.stderr.write("usage: rusage_exec.py OUT -- COMMAND [ARGS...]\n")
        return 2
    pid = os.fork()
    if pid == 0:
        try:
            os.execvp(argv[0], argv)
        except OSError as exc:
            sys.stderr.write(f"rusage_exec: cannot run {argv[0]}: {exc.strerror}\n")
            os._exit(127)
    # Keep no copy of the pipes: the neighbours must see EOF / EPIPE when the command exits.
    devnull = os.open(os.devnull, os.O_RDWR)
    os.dup2(devnull, 0)
    os.dup2(devnull, 1)
    while True:
        try:
            _, status, usage = os.wait4(pid, 0)
            break
        except InterruptedError:
            continue
    code = os.waitstatus_to_exitcode(status)
    with open(out, "w") as handle:
        handle.write(f"{code} {usage.ru_maxrss} {usage.ru_utime:.6f} {usage.ru_stime:.6f}\n")
    return code if code >= 0 else 128 - code


if __name__ == "__main__":
    sys.exit(main())
