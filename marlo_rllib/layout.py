"""Policy layouts: which RLModule drives which junction.

shared: one module (SHARED_MODULE) for every junction; independent: one module per junction, named
after it; central: one shared actor whose critic sees the global state (MAPPO).
"""

from __future__ import annotations

from collections.abc import Callable

SHARED_MODULE = "shared"
POLICY_LAYOUTS = ("shared", "independent", "central")


def policy_mapping(policy: str) -> Callable[..., str]:
    if policy != "independent":
        return lambda agent_id, episode=None, **kwargs: SHARED_MODULE
    return lambda agent_id, episode=None, **kwargs: agent_id
