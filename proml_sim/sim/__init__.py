"""Discrete-event simulation of teams, networks and block production on a real EVM engine.

Names are imported on first use (PEP 562), so that registering the command line stays cheap.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from proml_sim._lazy import getattr_for, table

if TYPE_CHECKING:
    from proml_sim.sim.actors import (
        Project,
        StepDurations,
        build_projects,
        digest_of,
        paper_workflow,
        record_stream,
    )
    from proml_sim.sim.forks import ConfirmationPolicy, PrivateBranch, final_height, rosenfeld
    from proml_sim.sim.monitor import COLUMNS, SCHEMA, Monitor, rows_dataframe, write_parquet
    from proml_sim.sim.network import REGIONS, NetworkModel, Outage, Partition
    from proml_sim.sim.profiles import PROFILES, ChainProfile, get_profile, load_profile
    from proml_sim.sim.study import Study, StudyResult
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

#: the module each public name lives in
_LAZY = table((
    ("proml_sim.sim.actors", "Project StepDurations build_projects digest_of "
     "paper_workflow record_stream"),
    ("proml_sim.sim.forks", "ConfirmationPolicy PrivateBranch final_height rosenfeld"),
    ("proml_sim.sim.monitor", "COLUMNS SCHEMA Monitor rows_dataframe write_parquet"),
    ("proml_sim.sim.study", "Study StudyResult"),
    ("proml_sim.sim.network", "REGIONS NetworkModel Outage Partition"),
    ("proml_sim.sim.profiles", "PROFILES ChainProfile get_profile load_profile"),
    ("proml_sim.sim.world", "DEPTHS MAX_FUTURE_S Participant Producer SimBlock SimTx "
     "TimestampPolicy World domain_id"),
))

__getattr__ = getattr_for("proml_sim.sim", _LAZY, globals())

__all__ = [
    "COLUMNS",
    "DEPTHS",
    "MAX_FUTURE_S",
    "PROFILES",
    "REGIONS",
    "SCHEMA",
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
    "Study",
    "StudyResult",
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
    "rows_dataframe",
    "write_parquet",
]
