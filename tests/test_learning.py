"""It learns: short real training runs through `train(config)`, the code path of `python -m fasttd3`.
Each takes one to three minutes on 2 CPU cores."""

from fasttd3.run import train
from fasttd3.training import Config


def run(tmp_path, **settings):
    config = Config(
        results_dir=str(tmp_path / "results"),
        models_dir=str(tmp_path / "models"),
        **settings,
    )
    return [float(row["eval_return"]) for row in train(config, progress=False)]


def test_inverted_pendulum_reaches_1000(tmp_path):
    returns = run(
        tmp_path,
        env="InvertedPendulum-v5",
        max_timesteps=8000,
        start_timesteps=1000,
        eval_freq=2000,
        eval_episodes=5,
        v_min=-100.0,
        v_max=100.0,
    )
    assert max(returns) >= 1000.0, returns


def test_pendulum_reaches_minus_200(tmp_path):
    returns = run(
        tmp_path,
        env="Pendulum-v1",
        max_timesteps=6000,
        start_timesteps=1000,
        eval_freq=1000,
        eval_episodes=5,
        v_min=-1600.0,
        v_max=0.0,
    )
    assert max(returns) >= -200.0, returns
