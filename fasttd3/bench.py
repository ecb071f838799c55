"""python -m fasttd3.bench: how fast FastTD3 runs on this machine.

Measures, in one run: the machine's dense float32 matmul rate; gradient updates per second of the
fused call (all `num_updates` in one jitted lax.scan) against one jitted call per update, at a few
batch and network sizes, with the fraction of the matmul rate the fused update reaches (its FLOPs
from XLA's cost analysis); and environment steps per second of the seed's two example commands.
The last line is `fused vs per-update: R.RRx` for the default setting.
"""
import argparse
import dataclasses
import sys
import tempfile
import time

import jax
import jax.numpy as jnp

from fasttd3.training import Config, Trainer


def best_time(fn, repeats):
    """The fastest of `repeats` timed calls (the others include noise from the rest of the machine)."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        jax.block_until_ready(fn())
        times.append(time.perf_counter() - start)
    return min(times)


def matmul_flops_per_second(size=2048, repeats=5):
    a = jax.random.normal(jax.random.key(0), (size, size))
    matmul = jax.jit(lambda x: x @ x)
    jax.block_until_ready(matmul(a))
    return 2 * size**3 / best_time(lambda: matmul(a), repeats)


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


def update_speed(config, obs_dim=17, action_dim=6, calls=10):
    """Updates per second, fused and one call per update, and the FLOPs of one update."""
    fused = Trainer(config, obs_dim, action_dim)
    single = Trainer(dataclasses.replace(config, num_updates=1), obs_dim, action_dim)
    results = {}
    for name, trainer, calls_per_round in [("fused", fused, 1), ("per-update", single, config.num_updates)]:
        state = filled_state(trainer, config, obs_dim, action_dim)
        state, _ = trainer.train(state)  # compile
        def round_of_updates():
            nonlocal state
            for _ in range(calls_per_round):
                state, metrics = trainer.train(state)
            return metrics
        seconds = best_time(round_of_updates, calls)
        results[name] = config.num_updates / seconds
    # XLA counts a loop body once whatever its trip count, so take the FLOPs of one update from the
    # single-update program.
    cost = single.train.lower(filled_state(single, config, obs_dim, action_dim)).compile().cost_analysis()
    cost = cost[0] if isinstance(cost, (list, tuple)) else cost
    results["flops_per_update"] = float(cost.get("flops", 0.0))
    return results


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
    args = parser.parse_args(argv)
    print(f"device: {jax.devices()[0].device_kind} ({jax.default_backend()}), jax {jax.__version__}")
    peak = matmul_flops_per_second()
    print(f"dense float32 matmul (2048^3): {peak / 1e9:.1f} GFLOP/s")

    sizes = [(256, 256)] if args.quick else [(256, 256), (1024, 256), (256, 512), (1024, 512)]
    print("\ngradient updates per second, 8 updates per env step (HalfCheetah shapes)")
    print(f"{'batch':>6} {'hidden':>6} {'fused':>9} {'per-update':>11} {'ratio':>6} {'GFLOP/update':>13} {'% of matmul':>12}")
    default_ratio = None
    for batch_size, hidden_dim in sizes:
        config = Config(batch_size=batch_size, hidden_dim=hidden_dim, num_updates=8, buffer_size=100_000)
        speed = update_speed(config)
        ratio = speed["fused"] / speed["per-update"]
        default_ratio = ratio if (batch_size, hidden_dim) == (256, 256) else default_ratio
        flops = speed["flops_per_update"]
        print(f"{batch_size:>6} {hidden_dim:>6} {speed['fused']:>9.1f} {speed['per-update']:>11.1f} {ratio:>5.2f}x "
              f"{flops / 1e9:>13.3f} {100 * flops * speed['fused'] / peak:>11.1f}%")

    steps = 2_000 if args.quick else 10_000
    print(f"\nenvironment steps per second, the seed's example commands ({steps} learning steps each)")
    for name, settings in SEED_COMMANDS.items():
        sps, seconds = env_speed(settings, steps, start_timesteps=max(1_000, 32 * settings.get("num_envs", 1)))
        print(f"{name:>13}: {sps:8.1f} env steps/s ({seconds:.0f} s including compilation)")
    print(f"\nfused vs per-update: {default_ratio:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
