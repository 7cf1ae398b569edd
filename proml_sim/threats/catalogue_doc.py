"""The threat catalogue as a document: ``threat_models/README.md`` is generated from the TOML
files (``proml threats list --markdown > threat_models/README.md``) and a test keeps the two
equal.

Example: ``print(catalogue_markdown(load_catalogue()))``.
"""

from __future__ import annotations

from collections.abc import Mapping

from proml_sim.threats.catalogue import Actor, ThreatModel

HEADER = """# The threat catalogue

One TOML file per scenario (fields: `proml_sim/threats/catalogue.py`; each parameter's values
are bounded by the file's `[ranges]`, shown after the value); this page is generated
from them by `proml threats list --markdown > threat_models/README.md` (a test checks that it is
current).  Run a scenario with `proml threats run ID`; add your own as a plugin
(`docs/tutorials/threat_scenario.py`, `proml threats run ID --scenarios FILE`), or, when its
attack is made of lifecycle calls, as a threat model alone whose `[play]` runs on both systems
(`docs/tutorials/X3.toml`, `proml threats run X3 --scenarios docs/tutorials/X3.toml`).

Attackers: O operator, DA dataset admin, L labeller, MD model developer, V verifier, A auditor,
C consumer, BP block producer, N network.  Verdicts: prevented, detected, documented_limit,
out_of_scope (a run whose parameters made no attack attempt measures no_attack).
"""


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _actor(a: Actor) -> str:
    """``v{i} x approvers (verif-{i}, eu/us: Model.verifier)``"""
    roles = ", ".join(f"{lc}.{r}" for lc, r in a.roles) or "no role"
    count = f" x {a.count}" if a.count != "" else ""
    return f"{a.name}{count} ({a.domain}, {'/'.join(a.regions)}: {roles})"


def catalogue_markdown(models: Mapping[str, ThreatModel]) -> str:
    """The catalogue page: a summary table, then each scenario's actors, steps and oracle."""
    lines = [HEADER, "| id | STRIDE | attacker | title | expected baseline | expected ProML |",
             "|---|---|---|---|---|---|"]
    for tm in models.values():
        lines.append(f"| [{tm.id}](#{tm.id.lower()}) | {''.join(tm.stride)} | "
                     f"{tm.attacker_role}@{_cell(tm.attacker_domain)} | {_cell(tm.title)} | "
                     f"{tm.expected_baseline} | {tm.expected_proml} |")
    for tm in models.values():
        lines += ["", f"## {tm.id}", "", f"**{tm.title}** ({''.join(tm.stride)}; attacker "
                  f"{tm.attacker_role} in {tm.attacker_domain}; {tm.seeds} seeds)", ""]
        for label, items in (("Capabilities", tm.capabilities), ("Keys held", tm.keys_held),
                             ("Preconditions", tm.preconditions), ("Steps", tm.steps)):
            lines.append(f"- {label}: " + "; ".join(items))
        if tm.actors:
            lines.append("- Actors: " + "; ".join(_actor(a) for a in tm.actors))
        lines.append(f"- Defence: {tm.defence}")
        lines.append(f"- Oracle: {tm.oracle}")
        lines.append(f"- Metrics: {', '.join(tm.metrics)}")
        if tm.limit:
            lines.append(f"- Documented limit: {tm.limit}")
        if tm.parameters:
            lines.append("- Parameters: " + ", ".join(f"`{k} = {v!r}`{_range(tm, k)}"
                                                      for k, v in tm.parameters.items()))
    return "\n".join(lines) + "\n"


def _range(tm: ThreatModel, name: str) -> str:
    """`` (>= 1, <= approvers)`` or `` (one of 'eu', 'us')``: the parameter's ``[ranges]``."""
    rules = tm.ranges.get(name, ())
    return "" if not rules else " (" + ", ".join(
        "one of " + ", ".join(repr(x) for x in b) if op == "in" else f"{op} {b}"
        for op, b in rules) + ")"
