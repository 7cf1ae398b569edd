"""Discrete-event simulation of teams, networks and block production on a real EVM engine."""

from proml_sim.sim.actors import (
    Project,
    StepDurations,
    build_projects,
    digest_of,
    paper_workflow,
    record_stream,
)
from proml_sim.sim.forks import ConfirmationPolicy, PrivateBranch, final_height, rosenfeld
from proml_sim.sim.monitor import COLUMNS, Monitor
from proml_sim.sim.network import REGIONS, NetworkModel, Outage, Partition
from proml_sim.sim.profiles import PROFILES, ChainProfile, get_profile, load_profile
from proml_sim.sim.world import (
    DEPTHS,
    MAX_FUTURE_S,
    Participant,
    Producer,
    SimBlock,
    SimTx,
    TimestampPolicy,
    World,
    domain_id,
)

__all__ = [
    "COLUMNS",
    "DEPTHS",
    "MAX_FUTURE_S",
    "PROFILES",
    "REGIONS",
    "ChainProfile",
    "ConfirmationPolicy",
    "Monitor",
    "NetworkModel",
    "Outage",
    "Participant",
    "Partition",
    "PrivateBranch",
    "Producer",
    "Project",
    "SimBlock",
    "SimTx",
    "StepDurations",
    "TimestampPolicy",
    "World",
    "build_projects",
    "digest_of",
    "domain_id",
    "final_height",
    "get_profile",
    "load_profile",
    "paper_workflow",
    "record_stream",
    "rosenfeld",
]
