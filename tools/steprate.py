"""Run a Python program and record how many MuJoCo environment steps it takes, and when.

    python tools/steprate.py OUT [--every SECONDS] -- -m MODULE ARGS...
    python tools/steprate.py OUT [--every SECONDS] -- SCRIPT.py ARGS...

Every Gymnasium MuJoCo environment calls MujocoEnv.do_simulation once per step, whatever
program drives it. This wrapper counts those calls (a monkeypatch, installed before the
program starts) and appends a line "COUNT UNIX_TIME" to OUT at most every SECONDS
(default 0.25), then runs the program in this process with runpy, with sys.argv set as
the program expects (a script also gets its folder first on sys.path, as `python
SCRIPT.py` would). Two programs measured this way are counted the same way: the rate
between two lines of OUT is environment steps per second. Only environments stepped in
this process are counted (vectorization_mode sync, or a single environment); async
vector environments step in subprocesses. tools/compare_td3_jax.py uses it.
"""

import os
import runpy
import sys
import time


def install_counter(out, every):
    from gymnasium.envs.mujoco import mujoco_env

    original = mujoco_env.MujocoEnv.do_simulation
    record = open(out, "w", buffering=1)  # line-buffered: a killed run keeps its lines
    count, last = 0, 0.0

    def do_simulation(self, ctrl, n_frames):
        nonlocal count, last
        original(self, ctrl, n_frames)
        count += 1
        now = time.time()
        if now - last >= every:
            record.write(f"{count} {now:.6f}\n")
            last = now

    mujoco_env.MujocoEnv.do_simulation = do_simulation


def main(argv):
    if "--" not in argv or argv.index("--") == 0:
        sys.exit(__doc__)
    split = argv.index("--")
    options, target = argv[:split], argv[split + 1 :]
    every = 0.25
    if "--every" in options:
        every = float(options[options.index("--every") + 1])
    install_counter(options[0], every)
    if target[0] == "-m":
        sys.argv = [target[1], *target[2:]]
        runpy.run_module(target[1], run_name="__main__", alter_sys=True)
    else:
        script = os.path.abspath(target[0])
        sys.argv = [script, *target[1:]]
        sys.path.insert(0, os.path.dirname(script))
        runpy.run_path(script, run_name="__main__")


if __name__ == "__main__":
    main(sys.argv[1:])
