"""The exit codes of every `drill` command, for scripts and schedulers."""

PASS, FAIL, INVALID, UNKNOWN, UNREACHABLE, CRASH, INTERRUPTED = 0, 1, 2, 3, 4, 70, 130

HELP = """exit codes:
  0    pass: every gate passed (or the command did what was asked)
  1    a gate failed (verify: a record or file is not intact; status: an alert)
  2    invalid input: a plan, flag or file is wrong (the message names it and the fix); also a
       run a hook refused for the plan's credentials or keys (401/403/404): not run, no verdict
  3    a gate could not be judged (unknown), or met only a target the plan waived below
       the spec's floor (waived: never a pass); none failed
  4    the lab or the target could not be reached or started; also a run whose fault the target
       or a hook could not take (unreachable, timeout, 5xx, refused): not run, no verdict
  70   the harness itself failed (a bug: the traceback is printed); never 1
  130  interrupted (Ctrl-C, SIGTERM): faults healed, the lab taken down"""
