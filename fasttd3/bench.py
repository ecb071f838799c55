"""python -m fasttd3.bench: how fast FastTD3 runs on this machine, and where the time goes.

Everything runs in float32 with HalfCheetah-v5's shapes (17 observation and 6 action
dimensions). A timing is the best of several calls or windows (the others include noise
from the rest of the machine), and every timed call is ended with jax.block_until_ready,
so that a time covers the work and not only its dispatch.

- matmul: the machine's dense float32 matmul rate (a jitted 2048 x 2048 product), the
  yardstick, measured before and after the update sweep; the faster is kept.
- updates: gradient updates per second of Trainer.train with num_updates = 8 (all 8 in one
  jitted lax.scan) and of one jitted call per update, against the batch size (width 256)
  and the hidden width (batch 256), in alternating rounds (the fastest round of each kind
  is kept). FLOPs per update come from XLA's cost analysis of the one-update program (a
  loop body is counted once whatever its trip count). XLA counts a lax.cond at its
  costlier branch, so the delayed actor update is counted at every update although it
  runs at every policy_freq-th: the FLOPs, and % of matmul = FLOPs/update x updates/s /
  matmul rate, are upper bounds.
- compile: for the loop's program (Trainer.step, learning) and the separate pieces
  (explore, store, train), the first call's time minus a steady call's, and the
  tracing/lowering and XLA compile times that jax.monitoring reports.
- store: what writing one transition costs in each loop design, at the default config
  (1,000,000-transition buffer): the store phase of the three-program loop (host to
  device and the jitted store call, waited for), and the extra time of a program that
  stores against the same program without a transition; and the copies of a replay ring
  that XLA put into each compiled program (copy instructions of ring-shaped arrays in the
  optimized HLO; 0 means every ring is updated in place).
- loops: environment steps per second of four designs of the training loop once
  learning runs, at the default config (1 env, 1 update, batch 256, width 256) and the
  "all features" config (16 envs, 4 updates, batch 512, width 512, linear schedule):
  "one program" (store the previous transition, explore and all updates in one jitted
  call, then the host steps the environments: the loop of the previous version),
  "one program, guarded store" (the same with the store inside a lax.cond, which keeps
  XLA from copying replay rings: see one_program_step),
  "two programs" (Trainer.step: Trainer.act stores and explores, then Trainer.learn is
  dispatched before the host steps the environments, so that both run at once; what
  fasttd3.cli.train runs) and "three programs" (explore, train dispatched, env.step,
  store: the first loop). At the default config also
  Trainer.train alone (update-only rate, 1 update per call). Windows of the designs
  alternate; the best of each is kept. Each design is also profiled phase by phase
  (every phase waited for), and the XLA compilations during all timed iterations are
  counted (0: nothing recompiles inside the loop).
- env steps: environment steps per second against num_envs for vectorization_mode sync
  and async, (1) the environments alone (random actions) and (2) with learning (the
  "two programs" loop, 1 update per vector step, default network); the environments'
  start-up time (subprocesses in async mode) apart.
- projection: milliseconds per call of the C51 projection, scatter against dense
  (projection_rows, at the end of this file).

The comparison with td3-jax (the same two commands, both programs run unchanged by their
own command lines, env steps counted the same way) is a separate script, since td3-jax is
not a dependency: `python tools/compare_td3_jax.py --port PATH` (PATH: td3-jax checked out
at commit 360d9ed). This script prints its last recorded ratios
(book/data/bench/td3jax.json) and the ratio of the default loop's env steps per second to
its update-only rate.

`--quick` measures fewer sizes and times for shorter. `--out FILE.json` writes every
measurement, a description of the machine (jax version, backend, device, CPU, load
average, XLA_FLAGS, date) and the command line. The last line printed is
`fused vs per-update: R.RRx` at batch 256, hidden 256.
"""

import argparse
import dataclasses
import datetime
import functools
import itertools
import json
import os
import platform
import re
import shlex
import sys
import time
import warnings
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from fasttd3.training import (
    Config,
    Trainer,
    Transition,
    act_step,
    learn_step,
    make_envs,
    make_transition,
    rescale_action,
    store,
    true_next_obs,
)

OBS_DIM, ACTION_DIM = 17, 6  # HalfCheetah-v5
# The four designs of the loop, each with its phases in the order the loop runs them.
DESIGNS = {
    "one program": ("step", "env.step", "transition"),
    "one program, guarded store": ("step", "env.step", "transition"),
    "two programs": ("store+explore", "train", "env.step", "transition"),
    "three programs": ("explore", "train", "env.step", "store"),
}
PHASES = DESIGNS["three programs"]  # the earlier loop's phases
# td3-jax's README commands (its "basic" and "all features" examples)
README_COMMANDS = {
    "basic": dict(env="HalfCheetah-v5"),
    "all features": dict(env="HalfCheetah-v5", num_envs=16, num_updates=4,
                         batch_size=512, hidden_dim=512, lr_schedule="linear"),
}  # fmt: skip
PORT_FILE = Path(__file__).resolve().parent.parent / "book/data/bench/td3jax.json"

# In async mode gym.make_vec forks one process per environment; JAX warns about forking
# a multithreaded process, but the workers only step MuJoCo and never touch JAX.
warnings.filterwarnings(
    "ignore", message=r"os\.fork\(\) was called", category=RuntimeWarning
)


def best_time(fn, repeats):
    """The fastest of `repeats` timed calls."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        jax.block_until_ready(fn())
        times.append(time.perf_counter() - start)
    return min(times)


def matmul_flops_per_second(size=2048, repeats=10):
    a = jax.random.normal(jax.random.key(0), (size, size))
    matmul = jax.jit(lambda x: x @ x)
    jax.block_until_ready(matmul(a))
    return 2 * size**3 / best_time(lambda: matmul(a), repeats)


def cpu_model():
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine():
    device = jax.devices()[0]
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    return {
        "jax": jax.__version__,
        "backend": jax.default_backend(),
        "device_kind": device.device_kind,
        "device_count": jax.device_count(),
        "cpu_count": os.cpu_count(),
        "cpu_model": cpu_model(),
        "load_average_1min": load,
        "platform": platform.platform(),
        "python": platform.python_version(),
        "XLA_FLAGS": os.environ.get("XLA_FLAGS", ""),
        "JAX_PLATFORMS": os.environ.get("JAX_PLATFORMS", ""),
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(
            timespec="seconds"
        ),
    }


def write_report(path, report):
    """Write a measurement report as indented JSON (folders made as needed); returns the
    path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=1) + "\n")
    return path


def unregister_listener(callback):
    """Remove a jax.monitoring duration listener; False where this jax cannot.

    jax.monitoring.unregister_event_duration_listener is recent (absent in jax 0.7.2,
    Colab's); older versions keep the listeners in a private list."""
    unregister = getattr(jax.monitoring, "unregister_event_duration_listener", None)
    if unregister is not None:
        unregister(callback)
        return True
    try:
        from jax._src import monitoring

        monitoring._event_duration_secs_listeners.remove(callback)
        return True
    except (ImportError, AttributeError, ValueError):
        return False


class CompileCounter:
    """Counts XLA compilations while active, and adds up the seconds of each compilation
    stage (tracing, lowering to MLIR, XLA's backend compile) that jax.monitoring reports."""

    BACKEND = "/jax/core/compile/backend_compile_duration"

    def __enter__(self):
        self.count, self.seconds, self.active = 0, {}, True
        jax.monitoring.register_event_duration_secs_listener(self.listen)
        return self

    def listen(self, event, seconds, **kwargs):
        if self.active and event.startswith("/jax/core/compile/"):
            stage = event.rsplit("/", 1)[1].removesuffix("_duration")
            self.seconds[stage] = self.seconds.get(stage, 0.0) + seconds
            self.count += event == self.BACKEND

    def __exit__(self, *exc):
        self.active = False  # stays silent where the listener cannot be removed
        unregister_listener(self.listen)


def filled_state(trainer, config, obs_dim, action_dim):
    """A training state whose replay rings are full of random transitions."""
    state = trainer.init(jax.random.key(0), obs_dim, action_dim)
    keys = jax.random.split(jax.random.key(1), 3)
    buffer = state.buffer
    buffer = buffer.replace(
        obs=jax.random.normal(keys[0], buffer.obs.shape),
        next_obs=jax.random.normal(keys[1], buffer.next_obs.shape),
        action=jax.random.uniform(keys[2], buffer.action.shape, minval=-1, maxval=1),
        size=jnp.asarray(buffer.capacity, jnp.int32),
    )
    return state.replace(buffer=buffer)


def update_speed(config, calls=10, max_seconds=None, per_update=True):
    """Updates per second, fused and one call per update (None unless `per_update`), and
    the FLOPs of one update. Rounds of the two kinds alternate; each kind keeps its
    fastest round. With `max_seconds`, stop after two rounds once that much is spent."""
    fused = Trainer(config, OBS_DIM, ACTION_DIM)
    single = Trainer(dataclasses.replace(config, num_updates=1), OBS_DIM, ACTION_DIM)
    kinds = {"fused": (fused, 1), "per-update": (single, config.num_updates)}
    kinds = {k: v for k, v in kinds.items() if per_update or k == "fused"}
    states = {  # the first call compiles
        name: trainer.train(filled_state(trainer, config, OBS_DIM, ACTION_DIM))[0]
        for name, (trainer, _) in kinds.items()
    }
    times = {name: [] for name in kinds}
    for _ in range(calls):
        for name, (trainer, calls_per_round) in kinds.items():
            start = time.perf_counter()
            for _ in range(calls_per_round):
                states[name], _ = trainer.train(states[name])
            jax.block_until_ready(states[name])
            times[name].append(time.perf_counter() - start)
        spent = sum(map(sum, times.values()))
        if max_seconds and len(times["fused"]) >= 2 and spent > max_seconds:
            break
    results = {"per-update": None}
    results.update({k: config.num_updates / min(v) for k, v in times.items()})
    # XLA counts a loop body once whatever its trip count: take the FLOPs of one update
    # from the single-update program (the lowered program's count, no compile needed).
    state = filled_state(single, config, OBS_DIM, ACTION_DIM)
    cost = single.train.lower(state).cost_analysis()
    cost = cost[0] if isinstance(cost, (list, tuple)) else cost
    results["flops_per_update"] = float(cost.get("flops", 0.0))
    return results


class Trainers:
    """One Trainer per setting that changes the compiled programs (vectorization_mode
    does not)."""

    def __init__(self):
        self.built = {}

    def __call__(self, config):
        key = dataclasses.replace(config, vectorization_mode="sync")
        if key not in self.built:
            self.built[key] = Trainer(config, OBS_DIM, ACTION_DIM)
        return self.built[key]


def one_program_step(config, agent, state, transition, obs, guarded_store=False):
    """The one-program design: act_step and learn_step in one jitted call, so the actions
    come back only when the updates are done.

    With `guarded_store`, the store runs inside a lax.cond whose predicate XLA cannot fold
    (the ring position is never negative). Unguarded, XLA fuses the store's
    dynamic-update-slice into the fusions that gather the n-step window, which then read
    the rings from before the store, so copy insertion copies the rings; a cond is a
    boundary that fusion does not cross, and the rings are updated in place."""
    if guarded_store and transition is not None:
        state = jax.lax.cond(
            state.buffer.position >= 0,
            lambda state: store(config, state, *transition),
            lambda state: state,
            state,
        )
        transition = None
    state, action = act_step(config, agent, state, transition, obs)
    return learn_step(config, agent, state), action


def one_program(trainer, guarded_store=False):
    """The jitted program of a one-program design, built once per Trainer."""
    programs = trainer.__dict__.setdefault("bench_one_programs", {})
    if guarded_store not in programs:
        programs[guarded_store] = jax.jit(
            functools.partial(
                one_program_step,
                trainer.config,
                trainer.agent,
                guarded_store=guarded_store,
            ),
            donate_argnums=0,
        )
    return programs[guarded_store]


def loop_iteration(trainer, envs, state, obs, clock=None):
    """One iteration of the three-program loop once learning has started: explore,
    train, env.step, store. With `clock` (a dict), every phase waits for its results and
    adds its seconds to clock[phase]; without it, only the actions are waited for."""
    low, high = envs.single_action_space.low, envs.single_action_space.high

    def finished(phase, start, result=None):
        if clock is not None:
            jax.block_until_ready(result)
            clock[phase] = clock.get(phase, 0.0) + time.perf_counter() - start

    start = time.perf_counter()
    state, action = trainer.explore(state, jnp.asarray(obs, jnp.float32))
    action = np.asarray(action, np.float32)  # the host needs the actions: waits
    finished("explore", start)
    start = time.perf_counter()
    state, _ = trainer.train(state)  # asynchronous: overlaps env.step unless clocked
    finished("train", start, state)
    start = time.perf_counter()
    next_obs, reward, terminated, truncated, info = envs.step(
        rescale_action(action, low, high)
    )
    finished("env.step", start)
    start = time.perf_counter()
    state = trainer.store(
        state,
        jnp.asarray(obs, jnp.float32),
        jnp.asarray(action),
        jnp.asarray(reward, jnp.float32),
        jnp.asarray(true_next_obs(next_obs, info), jnp.float32),
        jnp.asarray(terminated, jnp.float32),
        jnp.asarray(terminated | truncated),
    )
    finished("store", start, state)
    return state, next_obs


class Loop:
    """The training loop once learning runs, in one of DESIGNS, on its own environments
    and a state whose replay rings are full; every program compiled and warmed up.
    Design None: Trainer.train alone (the update-only rate, no environments)."""

    def __init__(self, trainer, config, design, warmup=3):
        self.trainer, self.config, self.design = trainer, config, design
        self.num_envs = 0 if design is None else config.num_envs
        self.envs, self.pending, self.startup = None, None, 0.0
        if design is not None:
            start = time.perf_counter()
            self.envs = make_envs(config, config.num_envs)
            self.obs, _ = self.envs.reset(seed=config.seed)
            self.startup = time.perf_counter() - start
            space = self.envs.single_action_space
            self.low, self.high = space.low, space.high
        self.state = filled_state(trainer, config, OBS_DIM, ACTION_DIM)
        for _ in range(warmup):
            self.iteration()
        jax.block_until_ready(self.state)

    def iteration(self, clock=None):
        trainer = self.trainer

        def finished(phase, start, result=None):
            if clock is not None:
                jax.block_until_ready(result)
                clock[phase] = clock.get(phase, 0.0) + time.perf_counter() - start

        if self.design is None:
            self.state, _ = trainer.train(self.state)
            return
        if self.design == "three programs":
            self.state, self.obs = loop_iteration(
                trainer, self.envs, self.state, self.obs, clock
            )
            return
        start = time.perf_counter()
        obs = jnp.asarray(self.obs, jnp.float32)
        if self.design.startswith("one program"):
            guarded = self.design == "one program, guarded store"
            program = one_program(trainer, guarded_store=guarded)
            self.state, action = program(self.state, self.pending, obs)
            action = np.asarray(action, np.float32)  # waits for the whole program
            finished("step", start, self.state)
        else:  # Trainer.step, written out so that each program can be clocked
            self.state, action = trainer.act(self.state, self.pending, obs)
            if clock is not None:
                action = np.asarray(action, np.float32)
                finished("store+explore", start, self.state)
                start = time.perf_counter()
            self.state = trainer.learn(self.state)  # dispatched: runs during env.step
            action = np.asarray(action, np.float32)  # waits for the first program only
            finished("train", start, self.state)
        start = time.perf_counter()
        next_obs, reward, terminated, truncated, info = self.envs.step(
            rescale_action(action, self.low, self.high)
        )
        finished("env.step", start)
        start = time.perf_counter()
        self.pending = make_transition(
            self.obs, action, reward, next_obs, terminated, truncated, info
        )
        self.obs = next_obs
        finished("transition", start)

    def rate(self, seconds, min_calls=3):
        """Env steps per second (iterations for the update-only loop) in one window."""
        calls, start = 0, time.perf_counter()
        while calls < min_calls or time.perf_counter() - start < seconds:
            self.iteration()
            calls += 1
        jax.block_until_ready(self.state)
        return calls * max(self.num_envs, 1) / (time.perf_counter() - start)

    def profile(self, seconds, clock, min_calls=2):
        """Iterations with a barrier after every phase, adding to `clock`; returns how many."""
        calls, start = 0, time.perf_counter()
        while calls < min_calls or time.perf_counter() - start < seconds:
            self.iteration(clock)
            calls += 1
        return calls

    def close(self):
        if self.envs is not None:
            self.envs.close()


def compare_loops(config, designs, rounds, seconds):
    """Env steps per second of each design in alternating windows (best kept), and each
    design's phases (mean seconds per iteration, barriers after every phase). Design
    None: Trainer.train alone. Counts XLA compilations during the timed iterations."""
    trainer = Trainer(config, OBS_DIM, ACTION_DIM)
    loops = {design: Loop(trainer, config, design) for design in designs}
    rates = {design: [] for design in designs}
    clocks = {design: {} for design in designs if design is not None}
    iterations = dict.fromkeys(clocks, 0)
    with CompileCounter() as counter:
        for _ in range(rounds):
            for design, loop in loops.items():
                rates[design].append(loop.rate(seconds))
                if design is not None:
                    iterations[design] += loop.profile(seconds / 2, clocks[design])
    for loop in loops.values():
        loop.close()
    rows = []
    for design in designs:
        row = {"design": design or "update only", "steps_per_second": max(rates[design]),
               "windows": rates[design]}  # fmt: skip
        if design is not None:
            row["phase_seconds"] = {
                phase: clocks[design].get(phase, 0.0) / iterations[design]
                for phase in DESIGNS[design]
            }
            row["profiled_iterations"] = iterations[design]
        rows.append(row)
    return rows, counter.count


def copy_shapes(hlo_text):
    """The shape of every copy instruction in an optimized HLO module's text."""
    shapes = re.findall(r"= [a-z0-9]+\[([0-9,]*)\][^=\n]*\bcopy\(", hlo_text)
    return [tuple(int(d) for d in shape.split(",") if d) for shape in shapes]


def ring_copies(compiled, buffer):
    """Copy instructions of arrays shaped like a replay ring in an optimized program."""
    ring = buffer.reward.shape  # (num_envs, capacity), the leading axes of every ring
    return sum(shape[:2] == ring for shape in copy_shapes(compiled.as_text()))


def store_costs(config, repeats=10):
    """What storing one transition costs in each design, at `config`, and the copies of
    replay rings in each compiled program (alternating calls, best of `repeats`)."""
    trainer = Trainer(config, OBS_DIM, ACTION_DIM)
    fused = one_program(trainer)
    guarded = one_program(trainer, guarded_store=True)
    state = filled_state(trainer, config, OBS_DIM, ACTION_DIM)
    n = config.num_envs
    obs = np.zeros((n, OBS_DIM), np.float32)
    action = np.zeros((n, ACTION_DIM), np.float32)
    zero, done = np.zeros(n, np.float32), np.zeros(n, bool)
    transition = Transition(obs, action, zero, obs, zero, done)
    device_obs = jnp.asarray(obs)

    def converted_store(state):  # what the three-program loop's store phase does
        return trainer.store(state, jnp.asarray(obs), jnp.asarray(action),
                             jnp.asarray(zero), jnp.asarray(obs), jnp.asarray(zero),
                             jnp.asarray(done))  # fmt: skip

    calls = {
        "store (three programs: host to device, jitted store)": converted_store,
        "step, learning, with a transition (one program)": lambda s: fused(
            s, transition, device_obs
        )[0],
        "step, learning, without a transition": lambda s: fused(s, None, device_obs)[0],
        "store+explore (two programs: act)": lambda s: trainer.act(
            s, transition, device_obs
        )[0],
        "explore alone": lambda s: trainer.act(s, None, device_obs)[0],
        "train (two programs: learn)": trainer.learn,
        "step, learning, with a transition (one program, guarded store)": (
            lambda s: guarded(s, transition, device_obs)[0]
        ),
    }
    times = {name: [] for name in calls}
    for name, call in calls.items():  # compile
        state = jax.block_until_ready(call(state))
    for _ in range(repeats):
        for name, call in calls.items():
            start = time.perf_counter()
            state = jax.block_until_ready(call(state))
            times[name].append(time.perf_counter() - start)
    seconds = {name: min(t) for name, t in times.items()}
    names = list(calls)
    programs = {
        "store": trainer.store.lower(
            state,
            device_obs,
            jnp.asarray(action),
            jnp.asarray(zero),
            device_obs,
            jnp.asarray(zero),
            jnp.asarray(done),
        ),  # fmt: skip
        "one program with a transition": fused.lower(state, transition, device_obs),
        "one program without a transition": fused.lower(state, None, device_obs),
        "one program, guarded store": guarded.lower(state, transition, device_obs),
        "act": trainer.act.lower(state, transition, device_obs),
        "learn": trainer.learn.lower(state),
    }
    copies, temp_bytes = {}, {}
    for name, lowered in programs.items():
        compiled = lowered.compile()
        copies[name] = ring_copies(compiled, state.buffer)
        memory = compiled.memory_analysis()
        temp_bytes[name] = getattr(memory, "temp_size_in_bytes", None)
    ring_bytes = sum(x.nbytes for x in jax.tree.leaves(state.buffer) if x.ndim >= 2)
    return {
        "config": {
            "num_envs": n,
            "buffer_size": config.buffer_size,
            "batch_size": config.batch_size,
            "hidden_dim": config.hidden_dim,
            "num_updates": config.num_updates,
        },  # fmt: skip
        "seconds": seconds,
        "three_programs_store_seconds": seconds[names[0]],
        "one_program_store_seconds": seconds[names[1]] - seconds[names[2]],
        "two_programs_store_seconds": seconds[names[3]] - seconds[names[4]],
        "ring_copies": copies,
        "temp_bytes": temp_bytes,
        "buffer_bytes": ring_bytes,
    }


def env_only_speed(config, seconds, windows=4):
    """Environment steps per second of the vector environment alone (random actions),
    best of `windows`, and its start-up time (make_vec + reset)."""
    start = time.perf_counter()
    envs = make_envs(config, config.num_envs)
    envs.reset(seed=config.seed)
    startup = time.perf_counter() - start
    rng = np.random.default_rng(config.seed)
    low, high = envs.single_action_space.low, envs.single_action_space.high
    actions = [
        rescale_action(rng.uniform(-1.0, 1.0, (config.num_envs, *low.shape)), low, high)
        for _ in range(8)
    ]
    for action in actions[:2]:  # warm-up
        envs.step(action)
    next_actions = itertools.cycle(actions)
    best = 0.0
    for _ in range(windows):
        calls, start = 0, time.perf_counter()
        while calls < 3 or time.perf_counter() - start < seconds / windows:
            envs.step(next(next_actions))
            calls += 1
        best = max(best, calls / (time.perf_counter() - start))
    envs.close()
    return best * config.num_envs, startup


def env_speeds(trainers, num_envs_list, seconds, windows=4):
    rows = []
    for mode in ("sync", "async"):
        for num_envs in num_envs_list:
            config = Config(num_envs=num_envs, num_updates=1, vectorization_mode=mode)
            env_only, env_startup = env_only_speed(config, seconds, windows)
            loop = Loop(trainers(config), config, "two programs")
            learning = max(loop.rate(seconds / windows) for _ in range(windows))
            loop.close()
            rows.append({"mode": mode, "num_envs": num_envs,
                         "env_only_steps_per_second": env_only,
                         "with_learning_steps_per_second": learning,
                         "startup_seconds": env_startup})  # fmt: skip
    return rows


def compile_times(trainer, repeats=5):
    """First call minus a steady call of the loop's step (Trainer.step, learning: its
    two programs) and of explore, store and train."""
    config = trainer.config
    state = filled_state(trainer, config, OBS_DIM, ACTION_DIM)
    n = config.num_envs
    obs, action = jnp.zeros((n, OBS_DIM)), jnp.zeros((n, ACTION_DIM))
    zeros, done = jnp.zeros(n), jnp.zeros(n, bool)
    transition = Transition(obs, action, zeros, obs, zeros, done)
    calls = {
        "step": lambda state: trainer.step(state, transition, obs, learn=True),
        "explore": lambda state: trainer.explore(state, obs),
        "store": lambda state: (
            trainer.store(state, obs, action, zeros, obs, zeros, done),
            None,
        ),
        "train": lambda state: trainer.train(state),
    }
    results = {}
    for name, call in calls.items():
        with CompileCounter() as counter:
            start = time.perf_counter()
            state, _ = jax.block_until_ready(call(state))
            first = time.perf_counter() - start

        def steady_call():
            nonlocal state
            state, _ = call(state)
            return state

        steady = best_time(steady_call, repeats)
        stages = counter.seconds
        results[name] = {
            "first_call_seconds": first,
            "steady_call_seconds": steady,
            "compile_seconds": first - steady,
            "xla_compile_seconds": stages.get("backend_compile", 0.0),
            "trace_and_lower_seconds": stages.get("jaxpr_trace", 0.0)
            + stages.get("jaxpr_to_mlir_module", 0.0),
            "compilations": counter.count,
        }
    return results


def port_summary(path=PORT_FILE):
    """The ratios last recorded by tools/compare_td3_jax.py, or None."""
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return None
    return data


def main(argv=None):
    parser = argparse.ArgumentParser(
        prog="python -m fasttd3.bench", description=__doc__.splitlines()[0]
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="fewer sizes and shorter timings (a few minutes)",
    )
    parser.add_argument("--out", metavar="FILE.json",
                        help="write every measurement to this JSON file")  # fmt: skip
    args = parser.parse_args(argv)
    argv = sys.argv[1:] if argv is None else argv
    report = {"command": shlex.join(["python", "-m", "fasttd3.bench", *argv]),
              "quick": args.quick, "machine": machine(), "seconds": {}}  # fmt: skip
    section_start = time.perf_counter()

    def section_done(name):
        nonlocal section_start
        report["seconds"][name] = round(time.perf_counter() - section_start, 1)
        section_start = time.perf_counter()

    device = jax.devices()[0].device_kind
    print(f"device: {device} ({jax.default_backend()}), jax {jax.__version__}")
    peak = matmul_flops_per_second()
    print(f"dense float32 matmul (2048^3): {peak / 1e9:.1f} GFLOP/s")
    section_done("matmul")

    if args.quick:
        batch_sizes, hidden_dims = [256, 1024], [256, 512]
    else:
        batch_sizes = hidden_dims = [64, 128, 256, 512, 1024]
    sizes = [(b, 256) for b in batch_sizes]
    sizes += [(256, h) for h in hidden_dims if h != 256]
    print("\ngradient updates per second, 8 updates per call (HalfCheetah shapes)")
    print(f"{'batch':>6} {'hidden':>6} {'fused':>9} {'per-update':>11} {'ratio':>6} "
          f"{'GFLOP/update':>13} {'% of matmul':>12}")  # fmt: skip
    speeds = [
        update_speed(
            Config(batch_size=b, hidden_dim=h, num_updates=8, buffer_size=100_000),
            max_seconds=1.0 if args.quick else 2.0,
            per_update=not args.quick or (b, h) == (256, 256),
        )
        for b, h in sizes
    ]
    # The yardstick again after the sweep: a busy moment at the start would flatter it.
    report["matmul_measurements"] = [peak, matmul_flops_per_second()]
    peak = report["matmul_flops_per_second"] = max(report["matmul_measurements"])
    report["updates"] = []
    for (batch_size, hidden_dim), speed in zip(sizes, speeds):
        flops = speed["flops_per_update"]
        report["updates"].append({
            "batch_size": batch_size, "hidden_dim": hidden_dim, "num_updates": 8,
            "fused_updates_per_second": speed["fused"],
            "per_update_updates_per_second": speed["per-update"],
            "flops_per_update": flops, "fraction_of_matmul": flops * speed["fused"] / peak,
        })  # fmt: skip
        separate = (
            f"{speed['per-update']:>11.1f} {speed['fused'] / speed['per-update']:>5.2f}x"
            if speed["per-update"]
            else f"{'-':>11} {'-':>6}"
        )
        print(f"{batch_size:>6} {hidden_dim:>6} {speed['fused']:>9.1f} {separate} "
              f"{flops / 1e9:>13.3f} {100 * flops * speed['fused'] / peak:>11.1f}%")  # fmt: skip
    default = next(
        row for row in report["updates"]
        if (row["batch_size"], row["hidden_dim"]) == (256, 256)
    )  # fmt: skip
    report["fused_vs_per_update"] = (
        default["fused_updates_per_second"] / default["per_update_updates_per_second"]
    )
    section_done("updates")

    # A fresh default Trainer, so that its first calls really compile.
    trainers = Trainers()
    default_config = Config()
    report["compile"] = compile_times(trainers(default_config))
    print("\ncompile time at the default config: first call minus a steady call")
    for name, row in report["compile"].items():
        print(f"{name:>8}: {row['compile_seconds']:6.2f} s "
              f"({row['xla_compile_seconds']:.2f} s XLA), "
              f"steady call {1e3 * row['steady_call_seconds']:.2f} ms")  # fmt: skip
    section_done("compile")

    report["store"] = costs = store_costs(default_config)
    print(
        "\nstoring one transition at the default config (1,000,000-transition buffer)"
    )
    for name, seconds in costs["seconds"].items():
        print(f"  {name:<64} {1e3 * seconds:8.2f} ms")
    print(f"  store's share: three programs {1e3 * costs['three_programs_store_seconds']:.2f}"
          f" ms, one program {1e3 * costs['one_program_store_seconds']:.2f} ms, "
          f"two programs {1e3 * costs['two_programs_store_seconds']:.2f} ms")  # fmt: skip
    print("  replay-ring copies in the compiled programs: "
          + ", ".join(f"{k} {v}" for k, v in costs["ring_copies"].items()))  # fmt: skip
    section_done("store")

    rounds, seconds = (2, 1.0) if args.quick else (4, 3.0)
    report["loops"], compilations = [], 0
    configs = {"default": default_config,
               "all features": Config(**README_COMMANDS["all features"])}  # fmt: skip
    print("\nenv steps per second of the loop designs (learning; best of "
          f"{rounds} alternating windows of {seconds:.0f} s)")  # fmt: skip
    for name, config in configs.items():
        designs = list(DESIGNS) + ([None] if name == "default" else [])
        rows, count = compare_loops(config, designs, rounds, seconds)
        compilations += count
        report["loops"].append({"name": name, "num_envs": config.num_envs,
                                "num_updates": config.num_updates,
                                "batch_size": config.batch_size,
                                "hidden_dim": config.hidden_dim, "rows": rows})  # fmt: skip
        one = rows[0]["steps_per_second"]
        for row in rows:
            phases = ", ".join(f"{phase} {1e3 * t:.2f}"
                               for phase, t in row.get("phase_seconds", {}).items())  # fmt: skip
            print(f"{name:>13} {row['design']:>26}: {row['steps_per_second']:8.1f} "
                  f"({row['steps_per_second'] / one:.2f}x one program)"
                  + (f"; ms per phase: {phases}" if phases else ""))  # fmt: skip
    report["loop_compilations"] = compilations
    print(f"XLA compilations during the timed loop iterations: {compilations}")
    basic = {
        row["design"]: row["steps_per_second"] for row in report["loops"][0]["rows"]
    }
    report["ratios"] = {
        "loop_vs_update_only": {
            design: basic[design] / basic["update only"] for design in DESIGNS
        }
    }
    section_done("loops")

    num_envs_list = [1, 16] if args.quick else [1, 4, 16, 64]
    report["env_steps"] = env_speeds(
        trainers, num_envs_list, seconds=1.0 if args.quick else 2.0
    )
    print("\nenv steps per second against num_envs: alone / with learning (1 update)")
    print(f"{'num_envs':>8} " + " ".join(
        f"{mode + ' ' + kind:>16}" for mode in ("sync", "async")
        for kind in ("alone", "learning")))  # fmt: skip
    for num_envs in num_envs_list:
        rows = {r["mode"]: r for r in report["env_steps"] if r["num_envs"] == num_envs}
        print(f"{num_envs:>8} " + " ".join(
            f"{rows[mode][key]:16.1f}" for mode in ("sync", "async")
            for key in ("env_only_steps_per_second",
                        "with_learning_steps_per_second")))  # fmt: skip
    section_done("env_steps")

    sizes = ((256, 101), (4096, 101)) if args.quick else None
    report["projection"] = projection_rows(**({"sizes": sizes} if sizes else {}))
    print("\nC51 projection, ms per call (median): batch atoms scatter dense")
    for batch, atoms in dict.fromkeys(
        (r["batch"], r["atoms"]) for r in report["projection"]
    ):
        ms = {r["method"]: r["ms"] for r in report["projection"]
              if (r["batch"], r["atoms"]) == (batch, atoms)}  # fmt: skip
        print(f"  {batch:>6} {atoms:>4} " + " ".join(f"{v:9.3f}" for v in ms.values()))
    section_done("projection")

    if args.out:
        print(f"\nwrote {write_report(args.out, report)}")
    ratio = report["ratios"]["loop_vs_update_only"]["two programs"]
    print(f"\ndefault loop (two programs) vs update-only: {ratio:.2f} (target >= 0.85; "
          "this command)")  # fmt: skip
    port = port_summary()
    command = "python tools/compare_td3_jax.py --port PATH"
    if port is None:
        print(f"against td3-jax: not measured here; run `{command}`")
    else:
        for row in port.get("summary", []):
            print(
                f"against td3-jax, {row['name']}: {row['ratio']:.2f}x "
                f"(target {row['target']:.1f}x; `{port['command']}`, {port['date']})"
            )
    print(f"\nfused vs per-update: {report['fused_vs_per_update']:.2f}x")
    return 0


def projection_rows(
    sizes=(
        (256, 101),
        (512, 101),
        (1024, 101),
        (4096, 101),
        (32768, 101),
        (256, 51),
        (256, 251),
    ),
    repeats=10,
    methods=("scatter", "dense"),
    seed=0,
):
    """Milliseconds per jitted call of project_distribution.

    For each (batch, atoms) in `sizes` and each method: the median of `repeats` calls,
    the methods alternating call by call so that both see the same load. FastTD3's
    support (+-250, discount 0.99), rewards that often clip and 5 % terminal rows.
    Returns a list of dicts {batch, atoms, method, ms}.
    """
    from fasttd3.c51 import project_distribution

    rows = []
    for batch, atoms in sizes:
        rng = np.random.default_rng(seed)
        logits = rng.normal(size=(batch, atoms))
        probs = np.exp(logits - logits.max(axis=1, keepdims=True))
        args = (
            jnp.asarray(probs / probs.sum(axis=1, keepdims=True), jnp.float32),
            jnp.asarray(100.0 * rng.normal(size=batch), jnp.float32),
            jnp.asarray(rng.uniform(size=batch) > 0.05, jnp.float32),
        )
        fns = {
            method: jax.jit(
                lambda p, r, b, method=method: project_distribution(
                    p, r, b, 0.99, -250.0, 250.0, method=method
                )
            )
            for method in methods
        }
        times = {method: [] for method in methods}
        for fn in fns.values():
            jax.block_until_ready(fn(*args))  # compile outside the timings
        for _ in range(repeats):
            for method, fn in fns.items():
                start = time.perf_counter()
                jax.block_until_ready(fn(*args))
                times[method].append(time.perf_counter() - start)
        rows += [
            {
                "batch": batch,
                "atoms": atoms,
                "method": method,
                "ms": 1e3 * float(np.median(times[method])),
            }
            for method in methods
        ]
    return rows


if __name__ == "__main__":
    sys.exit(main())
