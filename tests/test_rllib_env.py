"""The env as RLlib sees it: registered by name and wrapped by ParallelPettingZooEnv."""

from __future__ import annotations

from ray.tune.registry import ENV_CREATOR, _global_registry

from marlo_rllib.env.rllib import ENV_NAME, register


def test_registered_env_runs_an_episode_through_rllib_wrapper():
    assert register() == ENV_NAME
    creator = _global_registry.get(ENV_CREATOR, ENV_NAME)
    env = creator({"scenario": "2x2grid", "episode_seconds": 50, "shared_spaces": True})
    try:
        observations, _ = env.reset(seed=0)
        assert set(observations) == set(env.possible_agents)
        assert all(env.observation_space[a].contains(o) for a, o in observations.items())
        truncated = {"__all__": False}
        steps = 0
        while not truncated["__all__"]:
            actions = {a: env.action_space[a].sample(mask=o["action_mask"]) for a, o in observations.items()}
            observations, rewards, terminated, truncated, infos = env.step(actions)
            steps += 1
        assert steps == 10 and not terminated["__all__"]
        assert all("metrics" in infos[a] for a in env.possible_agents)
    finally:
        env.close()
