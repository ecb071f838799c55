"""python -m fasttd3.bench: how fast FastTD3 runs on this machine, and where the time goes.

Everything runs in float32 with HalfCheetah-v5's shapes (17 observation and 6 action dimensions).
A timing is the best of several calls (the others include noise from the rest of the machine), and
every call is ended with jax.block_until_ready, so a time covers the work and not only its dispatch.

- matmul: the machine's dense float32 matmul rate (a jitted 2048 x 2048 product), the yardstick,
  measured before and after the update sweep; the faster of the two is kept and used.
- updates: gradient updates per second of the fused call (Trainer.train: all num_updates = 8
  updates in one jitted lax.scan) and of one jitted call per update, against batch size and against
  hidden width, in alternating rounds (the fastest round of each kind is kept). FLOPs per update come
  from XLA's cost analysis of the one-update program (a loop body is counted once whatever its trip
  count, so the fused program would undercount). XLA counts a lax.cond at its costlier branch, so the
  delayed actor update is counted at every update although it runs at every policy_freq-th: the
  FLOPs, and % of matmul = FLOPs/update x updates/s / matmul rate, are upper bounds.
- env steps: environment steps per second against num_envs, for vectorization_mode sync and async,
  (1) for the environments alone (gym.make_vec as the CLI builds it, uniformly random actions, no
  learning) and (2) with learning: the loop of fasttd3.cli.train (explore, train with num_updates = 1,
  env.step, store) at the default network, on full replay rings, after warm-up. Each rate is the
  best of four timing windows; the start-up time of the environments (subprocesses in async mode)
  is reported apart.
- compile: for Trainer.train (the fused update), explore and store at the default Config, the first
  call's time minus a steady-state call's, and the tracing/lowering and XLA compile times that
  jax.monitoring reports during the first call.
- profile: one iteration of the CLI's loop at the default config (num_envs 1, num_updates 1, batch 256,
  hidden 256) and at the seed's "all features" config (num_envs 16, num_updates 4, batch 512, hidden
  512), phase by phase: explore (actor + noise, actions to the host), env.step, store (host to device
  and the ring write), train (the fused updates), each phase ended by jax.block_until_ready so that
  none overlaps the next; and the real iteration time without those barriers, where the update runs
  while the environments step (asynchronous dispatch). Both are means per iteration over rounds
  with and without barriers, alternating.
  The number of XLA compilations during all these iterations (jax.monitoring) is reported: 0 means
  nothing recompiles inside the loop.
- seed commands: environment steps per second of short real runs of fasttd3.cli.train with the seed
  project's two example commands (compilation and one evaluation episode included).

`--quick` measures fewer sizes (one call per update only at batch 256, hidden 256), num_envs 1 and
16, and times for shorter: about a minute on an idle two-core machine, against about five for the
full run. `--out FILE.json` writes every measurement (keys matmul_flops_per_second, updates, compile,
profile, env_steps, seed_commands, fused_vs_per_update; seconds per section), a description of the
machine (jax version, backend, device, CPU, load average, XLA_FLAGS, date) and the command line.
The last line printed is `fused vs per-update: R.RRx` at batch 256, hidden 256.
"""
import argparse
import dataclasses
import datetime
import itertools
import json
import os
import platform
import shlex
import sys
import tempfile
import time
import warnings
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from fasttd3.training import Config, Trainer, make_envs, rescale_action, true_next_obs

OBS_DIM, ACTION_DIM = 17, 6  # HalfCheetah-v5
PHASES = ("explore", "train", "env.step", "store")  # in the order the CLI's loop runs them

# In async mode gym.make_vec forks one process per environment; JAX warns about forking a
# multithreaded process, but the workers only step MuJoCo and never touch JAX.
warnings.filterwarnings("ignore", message=r"os\.fork\(\) was called", category=RuntimeWarning)


def best_time(fn, repeats):
    """The fastest of `repeats` timed calls (the others include noise from the rest of the machine)."""
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
    return {"jax": jax.__version__, "backend": jax.default_backend(), "device_kind": device.device_kind,
            "device_count": jax.device_count(), "cpu_count": os.cpu_count(), "cpu_model": cpu_model(),
            "load_average_1min": os.getloadavg()[0] if hasattr(os, "getloadavg") else None,
            "platform": platform.platform(), "python": platform.python_version(),
            "XLA_FLAGS": os.environ.get("XLA_FLAGS", ""), "JAX_PLATFORMS": os.environ.get("JAX_PLATFORMS", ""),
            "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")}


class CompileCounter:
    """Counts XLA compilations while active, and adds up the seconds of each compilation stage
    (tracing, lowering to MLIR, XLA's backend compile) that jax.monitoring reports."""
    BACKEND = "/jax/core/compile/backend_compile_duration"

    def __enter__(self):
        self.count, self.seconds = 0, {}
        jax.monitoring.register_event_duration_secs_listener(self.listen)
        return self

    def listen(self, event, seconds, **kwargs):
        if event.startswith("/jax/core/compile/"):
            stage = event.rsplit("/", 1)[1].removesuffix("_duration")
            self.seconds[stage] = self.seconds.get(stage, 0.0) + seconds
            self.count += event == self.BACKEND

    def __exit__(self, *exc):
        jax.monitoring.unregister_event_duration_listener(self.listen)


def filled_state(trainer, config, obs_dim, action_dim):
    """A training state whose replay rings are full of random transitions."""
    state = trainer.init(jax.random.key(0), obs_dim, action_dim)
    keys = jax.random.split(jax.random.key(1), 3)
    buffer = state.buffer
    buffer = buffer.replace(obs=jax.random.normal(keys[0], buffer.obs.shape),
                            next_obs=jax.random.normal(keys[1], buffer.next_obs.shape),
                            action=jax.random.uniform(keys[2], buffer.action.shape, minval=-1, maxval=1),
                            size=jnp.asarray(buffer.capacity, jnp.int32))
    return state.replace(buffer=buffer)


def update_speed(config, obs_dim=OBS_DIM, action_dim=ACTION_DIM, calls=10, max_seconds=None, per_update=True):
    """Updates per second, fused and one call per update (None unless `per_update`), and the FLOPs of
    one update. Rounds of the two kinds alternate, so that load from elsewhere hits both alike; each
    kind keeps its fastest round. With `max_seconds`, stop after two rounds once that much time is spent."""
    fused = Trainer(config, obs_dim, action_dim)
    single = Trainer(dataclasses.replace(config, num_updates=1), obs_dim, action_dim)
    kinds = {"fused": (fused, 1), "per-update": (single, config.num_updates)}
    kinds = {name: kind for name, kind in kinds.items() if per_update or name == "fused"}
    states = {name: trainer.train(filled_state(trainer, config, obs_dim, action_dim))[0]  # compile
              for name, (trainer, _) in kinds.items()}
    times = {name: [] for name in kinds}
    for _ in range(calls):
        for name, (trainer, calls_per_round) in kinds.items():
            start = time.perf_counter()
            for _ in range(calls_per_round):
                states[name], _ = trainer.train(states[name])
            jax.block_until_ready(states[name])
            times[name].append(time.perf_counter() - start)
        if max_seconds is not None and len(times["fused"]) >= 2 and sum(map(sum, times.values())) > max_seconds:
            break
    results = {"per-update": None, **{name: config.num_updates / min(seconds) for name, seconds in times.items()}}
    # XLA counts a loop body once whatever its trip count, so take the FLOPs of one update from the
    # single-update program (the lowered program's count: within 1% of the compiled one's, no compile).
    # It counts lax.cond at its costlier branch: the delayed actor update is included at every update.
    cost = single.train.lower(filled_state(single, config, obs_dim, action_dim)).cost_analysis()
    cost = cost[0] if isinstance(cost, (list, tuple)) else cost
    results["flops_per_update"] = float(cost.get("flops", 0.0))
    return results


class Trainers:
    """One Trainer per setting that changes the compiled programs (vectorization_mode does not)."""

    def __init__(self):
        self.built = {}

    def __call__(self, config):
        key = dataclasses.replace(config, vectorization_mode="sync")
        if key not in self.built:
            self.built[key] = Trainer(config, OBS_DIM, ACTION_DIM)
        return self.built[key]


def loop_iteration(trainer, envs, state, obs, clock=None):
    """One iteration of fasttd3.cli.train's loop once learning has started: explore, train,
    env.step, store. With `clock` (a dict), every phase waits for its results and adds its seconds
    to clock[phase]; without it, only the actions are waited for, as in the CLI."""
    low, high = envs.single_action_space.low, envs.single_action_space.high
    def finished(phase, start, result=None):
        if clock is not None:
            jax.block_until_ready(result)
            clock[phase] += time.perf_counter() - start
    start = time.perf_counter()
    state, action = trainer.explore(state, jnp.asarray(obs, jnp.float32))
    action = np.asarray(action, np.float32)  # the host needs the actions: waits for explore
    finished("explore", start)
    start = time.perf_counter()
    state, _ = trainer.train(state)  # dispatched asynchronously: overlaps env.step unless clocked
    finished("train", start, state)
    start = time.perf_counter()
    next_obs, reward, terminated, truncated, info = envs.step(rescale_action(action, low, high))
    finished("env.step", start)
    start = time.perf_counter()
    state = trainer.store(state, jnp.asarray(obs, jnp.float32), jnp.asarray(action),
                          jnp.asarray(reward, jnp.float32), jnp.asarray(true_next_obs(next_obs, info), jnp.float32),
                          jnp.asarray(terminated, jnp.float32), jnp.asarray(terminated | truncated))
    finished("store", start, state)
    return state, next_obs


def start_loop(trainer, config, warmup=3):
    """Environments, a full-ring state and the first observations, with every jitted call compiled."""
    start = time.perf_counter()
    envs = make_envs(config, config.num_envs)
    obs, _ = envs.reset(seed=config.seed)
    startup = time.perf_counter() - start
    state = filled_state(trainer, config, envs.single_observation_space.shape[0], envs.single_action_space.shape[0])
    for _ in range(warmup):
        state, obs = loop_iteration(trainer, envs, state, obs)
    return envs, jax.block_until_ready(state), obs, startup


def best_rate(step, finish, seconds, windows=4):
    """Calls of `step` per second in the best of `windows` windows of seconds / windows each (at
    least 3 calls); `finish` waits for what the calls left running, inside each window."""
    best = 0.0
    for _ in range(windows):
        calls, start = 0, time.perf_counter()
        while calls < 3 or time.perf_counter() - start < seconds / windows:
            step()
            calls += 1
        finish()
        best = max(best, calls / (time.perf_counter() - start))
    return best


def env_only_speed(config, seconds):
    """Environment steps per second of the vector environment alone (random actions), and its
    start-up time (make_vec + reset)."""
    start = time.perf_counter()
    envs = make_envs(config, config.num_envs)
    envs.reset(seed=config.seed)
    startup = time.perf_counter() - start
    rng = np.random.default_rng(config.seed)
    low, high = envs.single_action_space.low, envs.single_action_space.high
    actions = [rescale_action(rng.uniform(-1.0, 1.0, (config.num_envs, *low.shape)), low, high) for _ in range(8)]
    for action in actions[:2]:  # warm-up
        envs.step(action)
    next_actions = itertools.cycle(actions)
    rate = best_rate(lambda: envs.step(next(next_actions)), lambda: None, seconds)
    envs.close()
    return rate * config.num_envs, startup


def learning_speed(trainer, config, seconds):
    """Environment steps per second of the CLI's loop (steady state), and the environments' start-up."""
    envs, state, obs, startup = start_loop(trainer, config)
    def step():
        nonlocal state, obs
        state, obs = loop_iteration(trainer, envs, state, obs)
    rate = best_rate(step, lambda: jax.block_until_ready(state), seconds)
    envs.close()
    return rate * config.num_envs, startup


def env_speeds(trainers, num_envs_list, seconds):
    rows = []
    for mode in ("sync", "async"):
        for num_envs in num_envs_list:
            config = Config(num_envs=num_envs, num_updates=1, vectorization_mode=mode)
            env_only, env_startup = env_only_speed(config, seconds)
            learning, _ = learning_speed(trainers(config), config, seconds)
            rows.append({"mode": mode, "num_envs": num_envs, "env_only_steps_per_second": env_only,
                         "with_learning_steps_per_second": learning, "startup_seconds": env_startup})
    return rows


def compile_times(trainer, repeats=5):
    """First call minus steady-state call of explore, store and train (the fused update)."""
    config = trainer.config
    state = filled_state(trainer, config, OBS_DIM, ACTION_DIM)
    n = config.num_envs
    obs, action = jnp.zeros((n, OBS_DIM)), jnp.zeros((n, ACTION_DIM))
    zeros, done = jnp.zeros(n), jnp.zeros(n, bool)
    calls = {"explore": lambda state: trainer.explore(state, obs),
             "store": lambda state: (trainer.store(state, obs, action, zeros, obs, zeros, done), None),
             "train": lambda state: trainer.train(state)}
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
        results[name] = {"first_call_seconds": first, "steady_call_seconds": steady, "compile_seconds": first - steady,
                         "xla_compile_seconds": counter.seconds.get("backend_compile", 0.0),
                         "trace_and_lower_seconds": counter.seconds.get("jaxpr_trace", 0.0)
                         + counter.seconds.get("jaxpr_to_mlir_module", 0.0),
                         "compilations": counter.count}
    return results


def profile(trainer, config, rounds, seconds_per_round):
    """Mean seconds per loop iteration of each phase (barriers between phases) and of the real,
    overlapped iteration (no barriers); rounds of the two kinds alternate. Counts compilations."""
    envs, state, obs, _ = start_loop(trainer, config)
    start = time.perf_counter()
    state, obs = loop_iteration(trainer, envs, jax.block_until_ready(state), obs, clock=dict.fromkeys(PHASES, 0.0))
    per_round = max(2, round(seconds_per_round / (time.perf_counter() - start)))
    clock, overlapped = dict.fromkeys(PHASES, 0.0), 0.0
    with CompileCounter() as counter:
        for _ in range(rounds):
            for _ in range(per_round):
                state, obs = loop_iteration(trainer, envs, state, obs, clock)
            start = time.perf_counter()
            for _ in range(per_round):
                state, obs = loop_iteration(trainer, envs, state, obs)
            jax.block_until_ready(state)
            overlapped += time.perf_counter() - start
    envs.close()
    iterations = rounds * per_round
    return {"iterations": iterations, "phase_seconds": {phase: clock[phase] / iterations for phase in PHASES},
            "sequential_seconds": sum(clock.values()) / iterations, "overlapped_seconds": overlapped / iterations,
            "compilations": counter.count, "compile_check_iterations": 2 * iterations}


SEED_COMMANDS = {  # the seed project's two example commands (README "Usage")
    "basic": dict(env="HalfCheetah-v5"),
    "all features": dict(env="HalfCheetah-v5", num_envs=16, num_updates=4, batch_size=512, hidden_dim=512,
                         lr_schedule="linear"),
}


def env_speed(settings, steps, start_timesteps):
    """Environment steps per second of a short real run of `train` (the CLI's code path), learning
    from `start_timesteps` on; includes compilation and one evaluation episode at the end."""
    from fasttd3.cli import train
    with tempfile.TemporaryDirectory() as tmp:
        config = Config(**settings, max_timesteps=start_timesteps + steps, start_timesteps=start_timesteps,
                        eval_freq=start_timesteps + steps, eval_episodes=1, save_freq=0,
                        results_dir=f"{tmp}/results", models_dir=f"{tmp}/models")
        start = time.perf_counter()
        rows = train(config, progress=False)
        return rows[-1]["steps_per_second"], time.perf_counter() - start


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m fasttd3.bench", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer sizes and shorter runs (about a minute)")
    parser.add_argument("--out", metavar="FILE.json", help="write every measurement to this JSON file")
    args = parser.parse_args(argv)
    argv = sys.argv[1:] if argv is None else argv
    report = {"command": shlex.join(["python", "-m", "fasttd3.bench", *argv]), "quick": args.quick,
              "machine": machine(), "seconds": {}}
    section_start = time.perf_counter()
    def section_done(name):
        nonlocal section_start
        report["seconds"][name] = round(time.perf_counter() - section_start, 1)
        section_start = time.perf_counter()

    print(f"device: {jax.devices()[0].device_kind} ({jax.default_backend()}), jax {jax.__version__}")
    peak = matmul_flops_per_second()
    print(f"dense float32 matmul (2048^3): {peak / 1e9:.1f} GFLOP/s")
    section_done("matmul")

    # --quick times one call per update only at batch 256, hidden 256 (each size costs compilations).
    batch_sizes, hidden_dims = ([256, 1024], [256, 512]) if args.quick else ([256, 1024, 4096], [128, 256, 512, 1024])
    sizes = [(b, 256) for b in batch_sizes] + [(256, h) for h in hidden_dims if h != 256]
    print("\ngradient updates per second, 8 updates per env step (HalfCheetah shapes)")
    print(f"{'batch':>6} {'hidden':>6} {'fused':>9} {'per-update':>11} {'ratio':>6} {'GFLOP/update':>13} {'% of matmul':>12}")
    speeds = [update_speed(Config(batch_size=batch_size, hidden_dim=hidden_dim, num_updates=8, buffer_size=100_000),
                           max_seconds=1.0 if args.quick else 2.0,
                           per_update=not args.quick or (batch_size, hidden_dim) == (256, 256))
              for batch_size, hidden_dim in sizes]
    # The yardstick again after the sweep: a busy moment at the start would flatter every update.
    report["matmul_measurements"] = [peak, matmul_flops_per_second()]
    peak = report["matmul_flops_per_second"] = max(report["matmul_measurements"])
    report["updates"] = []
    for (batch_size, hidden_dim), speed in zip(sizes, speeds):
        flops = speed["flops_per_update"]
        report["updates"].append({"batch_size": batch_size, "hidden_dim": hidden_dim, "num_updates": 8,
                                  "fused_updates_per_second": speed["fused"],
                                  "per_update_updates_per_second": speed["per-update"],
                                  "flops_per_update": flops, "fraction_of_matmul": flops * speed["fused"] / peak})
        separate = (f"{speed['per-update']:>11.1f} {speed['fused'] / speed['per-update']:>5.2f}x"
                    if speed["per-update"] else f"{'-':>11} {'-':>6}")
        print(f"{batch_size:>6} {hidden_dim:>6} {speed['fused']:>9.1f} {separate} "
              f"{flops / 1e9:>13.3f} {100 * flops * speed['fused'] / peak:>11.1f}%")
    default = next(row for row in report["updates"] if (row["batch_size"], row["hidden_dim"]) == (256, 256))
    report["fused_vs_per_update"] = default["fused_updates_per_second"] / default["per_update_updates_per_second"]
    section_done("updates")

    # A fresh default Trainer, so that its first calls really compile; the profile and the env sweep reuse it.
    trainers = Trainers()
    default_config = Config()
    report["compile"] = compile_times(trainers(default_config))
    print("\ncompile time at the default config: first call minus a steady call (XLA compile inside it)")
    for name, row in report["compile"].items():
        print(f"{name:>8}: {row['compile_seconds']:6.2f} s ({row['xla_compile_seconds']:.2f} s XLA), "
              f"steady call {1e3 * row['steady_call_seconds']:.2f} ms")
    section_done("compile")

    profiles = {"default": default_config, "all features": Config(**SEED_COMMANDS["all features"])}
    rounds, seconds_per_round = (2, 0.5) if args.quick else (3, 1.0)
    report["profile"] = []
    print("\none loop iteration, phase by phase (ms; each phase waited for) and overlapped (no barriers)")
    print(f"{'config':>13} " + " ".join(f"{phase:>9}" for phase in PHASES) + f" {'sum':>9} {'overlapped':>11}")
    for name, config in profiles.items():
        row = profile(trainers(config), config, rounds, seconds_per_round)
        report["profile"].append({"name": name, "num_envs": config.num_envs, "num_updates": config.num_updates,
                                  "batch_size": config.batch_size, "hidden_dim": config.hidden_dim, **row})
        print(f"{name:>13} " + " ".join(f"{1e3 * row['phase_seconds'][phase]:9.2f}" for phase in PHASES)
              + f" {1e3 * row['sequential_seconds']:9.2f} {1e3 * row['overlapped_seconds']:11.2f}")
    compilations = sum(row["compilations"] for row in report["profile"])
    iterations = sum(row["compile_check_iterations"] for row in report["profile"])
    print(f"XLA compilations during {iterations} loop iterations after warm-up: {compilations}")
    section_done("profile")

    num_envs_list = [1, 16] if args.quick else [1, 4, 16, 64]
    report["env_steps"] = env_speeds(trainers, num_envs_list, seconds=0.5 if args.quick else 1.0)
    print("\nenvironment steps per second against num_envs: environments alone / with learning (num_updates 1)")
    print(f"{'num_envs':>8} " + " ".join(f"{mode + ' ' + kind:>20}" for mode in ("sync", "async")
                                         for kind in ("alone", "learning")))
    for num_envs in num_envs_list:
        rows = {row["mode"]: row for row in report["env_steps"] if row["num_envs"] == num_envs}
        print(f"{num_envs:>8} " + " ".join(f"{rows[mode][key]:20.1f}" for mode in ("sync", "async")
                                           for key in ("env_only_steps_per_second", "with_learning_steps_per_second")))
    section_done("env_steps")

    steps = 500 if args.quick else 2_000
    print(f"\nenvironment steps per second, the seed's example commands ({steps} learning steps each)")
    report["seed_commands"] = []
    for name, settings in SEED_COMMANDS.items():
        sps, seconds = env_speed(settings, steps, start_timesteps=max(1_000, 32 * settings.get("num_envs", 1)))
        report["seed_commands"].append({"name": name, "settings": settings, "learning_steps": steps,
                                        "steps_per_second": sps, "seconds": seconds})
        print(f"{name:>13}: {sps:8.1f} env steps/s ({seconds:.0f} s including compilation)")
    section_done("seed_commands")

    if args.out:
        path = Path(args.out)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(report, indent=1) + "\n")
        print(f"\nwrote {path}")
    print(f"\nfused vs per-update: {report['fused_vs_per_update']:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
