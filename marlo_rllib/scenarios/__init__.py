from marlo_rllib.scenarios.netinfo import NetSummary, summarize_net
from marlo_rllib.scenarios.spec import ScenarioSpec, Timing, catalog, load_scenario, load_scenario_file

__all__ = ["NetSummary", "ScenarioSpec", "Timing", "catalog", "load_scenario", "load_scenario_file", "summarize_net"]
