"""Each evaluation episode's return and length for a saved policy:
`python tools/episode_returns.py RUN_DIR CHECKPOINT [--reset_seeds S ...]`.

RUN_DIR holds the run's config.json (book/data/GROUP/ARM__seedN/); CHECKPOINT is the
run's models/NAME/checkpoint.msgpack. The training loop logs only the mean over its
evaluation episodes; this prints them one by one, which shows how alike they are.
"""

import argparse
import json
from pathlib import Path

import jax
import numpy as np

from fasttd3.run import load_checkpoint
from fasttd3.training import Config, Trainer, episode_returns, make_envs


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("checkpoint", type=Path)
    parser.add_argument("--reset_seeds", type=int, nargs="+", default=[1, 2, 3])
    args = parser.parse_args()
    settings = json.loads((args.run_dir / "config.json").read_text())
    settings.pop("sources", None)
    config = Config(**settings)
    envs = make_envs(config, config.eval_episodes)
    obs_dim = envs.single_observation_space.shape[0]
    action_dim = envs.single_action_space.shape[0]
    trainer = Trainer(config, obs_dim, action_dim)
    template = trainer.init(jax.random.key(config.seed), obs_dim, action_dim)
    saved = load_checkpoint(args.checkpoint, template, config)
    print(f"{args.run_dir.name}, policy at step {saved.step:,}:")
    for seed in args.reset_seeds:
        returns, lengths = episode_returns(trainer, saved.state, envs, seed)
        print(f"  reset seed {seed}: returns {np.round(returns).astype(int).tolist()}")
        print(f"  {'':>{len(str(seed)) + 11}} lengths {lengths.tolist()}")
    envs.close()


if __name__ == "__main__":
    main()
