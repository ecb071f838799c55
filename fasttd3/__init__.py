"""FastTD3 in JAX: the library that the chapters of the FastTD3 book build.

Every module except this one is generated from a chapter by `tools/export.py`.
"""

from fasttd3.c51 import (
    categorical_cross_entropy,
    expected_value,
    make_support,
    project_distribution,
)
from fasttd3.networks import Actor, Critic, TwinCritic
from fasttd3.normalization import Normalizer
from fasttd3.ondevice import train_on_device
from fasttd3.replay import ReplayBuffer
from fasttd3.run import train
from fasttd3.training import Config, Trainer, TrainState
from fasttd3.update import (
    Agent,
    AgentConfig,
    AgentState,
    Batch,
    actor_loss,
    critic_loss,
    critic_targets,
    init_agent_state,
    make_agent,
    update,
)

__all__ = [
    "Actor",
    "Agent",
    "AgentConfig",
    "AgentState",
    "Batch",
    "Config",
    "Critic",
    "Normalizer",
    "ReplayBuffer",
    "TrainState",
    "Trainer",
    "TwinCritic",
    "train",
    "train_on_device",
    "actor_loss",
    "categorical_cross_entropy",
    "critic_loss",
    "critic_targets",
    "expected_value",
    "init_agent_state",
    "make_agent",
    "make_support",
    "project_distribution",
    "update",
]
