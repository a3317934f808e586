"""The exit codes of every `drill` command, for scripts and schedulers."""

PASS, FAIL, INVALID, UNKNOWN, UNREACHABLE, CRASH, INTERRUPTED = 0, 1, 2, 3, 4, 70, 130

HELP = """exit codes:
  0    pass: every gate passed (or the command did what was asked)
  1    a gate failed (verify: a record or file is not intact; status: an alert)
  2    invalid input: a plan, flag or file is wrong (the message names it and the fix)
  3    a gate could not be judged (unknown), or met only a target the plan waived below
       the spec's floor (waived: never a pass); none failed
  4    the lab or the target could not be reached or started
  70   the harness itself failed (a bug: the traceback is printed); never 1
  130  interrupted (Ctrl-C, SIGTERM): faults healed, the lab taken down"""
