"""Shared helpers for scenarios: small worlds of participants on the simulated chain."""

from __future__ import annotations

import functools
from collections.abc import Generator, Iterable
from typing import Any, Literal

import simpy

from proml_sim.chain import TxSender
from proml_sim.chain.abi import ContractABI
from proml_sim.chain.accounts import DEFAULT_TIP
from proml_sim.chain.client import REVERT_GAS, LifecycleClient, PendingOp
from proml_sim.compiler import CompiledContract
from proml_sim.dsl import Artefact, Role, State
from proml_sim.errors import LifecycleError, TransactionFailed, UsageError
from proml_sim.lifecycles import Model
from proml_sim.sim import World
from proml_sim.sim.world import Participant, SimTx
from proml_sim.threats.catalogue import CatalogueError, MissingParameter, ThreatModel
from proml_sim.threats.kit import Alarm, Trial, trials_outcome
from proml_sim.threats.mutants import build_mutant, mutants_for
from proml_sim.threats.runner import Outcome, scenario

PAPER_MODEL = Model  # model_lifecycle's own class named Model shadows the name there


def send_ok(w: World, who: str | Participant, lifecycle: str, method: str, *args: Any
            ) -> Generator[Any, Any, SimTx]:
    """Actor step: one call as ``who``, waited for until its block is seen."""
    tx = yield from w.send(who, lifecycle, method, *args)
    yield w.confirmed(tx, 1)
    return tx


def play(w: World, until: float, *actors: Generator[Any, Any, Any],
         tail: float | None = None) -> None:
    """Run the actor processes until simulated time ``until``, then close the world's run.

    With ``tail`` the actors are the attack's scripts, which must end: the horizon ``until``
    is what the scenario chose for its default parameters, and a larger parameter (more
    victims, more names) that makes a script outlast it extends the run to the script's end
    and ``tail`` seconds after (for the defences to look), instead of cutting the attack short
    and measuring part of it."""
    procs = [w.env.process(actor) for actor in actors]
    w.run(until, drain=False)
    finish(w.env, procs, tail)
    w.finish()


def wait_until(env: simpy.Environment, at: float) -> simpy.Timeout:
    """A script's wait for its planned time ``at``; a time already passed (the step before
    took longer, as when approvals queue for blocks) is no wait."""
    return env.timeout(max(0.0, at - env.now))


def finish(env: simpy.Environment, procs: list[simpy.Process], tail: float | None) -> None:
    """With ``tail`` (:func:`play`), run ``env`` on until every script in ``procs`` ended,
    then ``tail`` seconds more; nothing when they ended by now or ``tail`` is None."""
    rest = [p for p in procs if p.is_alive]
    if tail is None or not rest:
        return
    env.run(until=env.all_of(rest))
    if tail > 0:
        env.run(until=env.now + tail)


def trials_of(trials: Iterable[tuple[bool, float | None, Iterable[Alarm]]],
              **kw: Any) -> Outcome:
    """:func:`kit.trials_outcome` over ``(goal reached, attempt start, alarms)`` triples (none:
    the run made no attempt, as C1 without a race or T5 without broken steps)."""
    return trials_outcome([Trial(ok, tuple(al), at) for ok, at, al in trials], **kw)


def salt(text: str) -> bytes:
    return text.encode().ljust(32, b"\0")[:32]


# -- the verification threshold as a scenario parameter ---------------------------------------
@functools.cache
def model_lifecycle(approvals: int = 2, count: str = "domains") -> type[Artefact]:
    """The paper's Model lifecycle with ``verify`` needing ``approvals`` approvals counted by
    ``count`` ("domains" or "accounts"); (2, "domains") is the paper's own class."""
    if (approvals, count) == (2, "domains"):
        return PAPER_MODEL
    if approvals < 2 or count not in ("domains", "accounts"):
        raise UsageError(f"approvals={approvals}, count={count!r}: use approvals >= 2 and "
                         "count 'domains' or 'accounts' in the threat model's [parameters]")
    k = approvals
    mode: Literal["accounts", "domains"] = "accounts" if count == "accounts" else "domains"

    class Model(Artefact):  # the paper's name: the same lifecycle, the same events
        operator = Role()
        developer = Role()
        verifier = Role()
        auditor = Role()
        requested = State(initial=True, by=operator)
        trained = State()
        rejected = State()
        verified = State()
        delivered = State()
        audited = State(final=True)
        withdrawn = State(final=True)
        train = (requested | trained | rejected).to(trained, by=developer, evidence=True)
        verify = trained.to(verified, by=verifier, approvals=k, count=mode, evidence=True,
                            separate_from=train)
        reject = trained.to(rejected, by=verifier, evidence=True, separate_from=train)
        accept = verified.to(delivered, by=operator)
        audit = delivered.to(audited, by=auditor, evidence=True)
        withdraw = (requested | trained | rejected | verified | delivered).to(
            withdrawn, by=operator)

    return Model


def threshold_of(client: Any, transition: str = "verify") -> tuple[int, str]:
    """(k, count mode) of a transition of a deployed lifecycle, read from the lifecycle the
    contract was compiled from (what an attacker reads from the verified source)."""
    t = client.ir.transition(transition)
    return int(t.approvals), str(t.count)


# -- branch threats-s: parameters, the baseline's database, contracts beside the paper's -------
def params(tm: ThreatModel, *names: str) -> dict[str, Any]:
    """The ``[parameters]`` a scenario reads, ``names``, all from the threat model (their values
    and their bounds, ``[ranges]``, live in the file only); a missing name is exit 2 naming it,
    and so is a name the scenario does not read (a misspelling would otherwise go unused)."""
    if unknown := set(tm.parameters) - set(names):
        raise UsageError(f"{tm.path}: unknown parameters {sorted(unknown)}; known: "
                         f"{sorted(names)}")
    if missing := [n for n in names if n not in tm.parameters]:
        raise MissingParameter(tm.path or tm.id, tm.id, missing)
    return {n: tm.parameters[n] for n in names}


def param_error(tm: ThreatModel, problem: str) -> CatalogueError:
    """The error of a bad ``[parameters]`` value: names the file and the fix."""
    return CatalogueError(f"{tm.path or tm.id}: [parameters] {problem}; fix the value (the "
                          "--param value, or the scenario file's) or bound it in [ranges]")


def param(tm: ThreatModel, name: str) -> Any:
    """A required ``[parameters]`` value (its bounds: the model's ``[ranges]``; missing: a
    :class:`~proml_sim.threats.catalogue.MissingParameter`); :func:`params` reads all a
    scenario reads at once."""
    return tm.parameters[name]


def add_lifecycle(w: World, key: str, compiled: CompiledContract,
                  grants: list[tuple[str, str]]) -> LifecycleClient:
    """Deploy another lifecycle registry in ``w`` (deployer: the world's admin), grant
    ``(participant, role)`` (a consortium lifecycle by domain enrolment:
    :meth:`World.add_lifecycle`), usable as ``w.send(p, key, ...)``.  Call before any
    participant sends."""
    assert w.admin is not None
    client: LifecycleClient = w.add_lifecycle(key, compiled, grants, deployer=w.admin)
    return client


def mutant(mid: str, lifecycle: Any = Model) -> CompiledContract:
    """The generated registry of ``lifecycle`` with mutant ``mid`` of the mutation catalogue
    planted (the one copy of each planted weakness: :mod:`proml_sim.threats.mutants`)."""
    for m in mutants_for(lifecycle):
        if not isinstance(m, tuple) and m.id == mid:
            return build_mutant(m, lifecycle)
    raise LookupError(f"the mutation catalogue has no applicable mutant {mid!r}")


class RawCalls:
    """A world client for raw transactions: ``w.send(p, key, "tx", to, data, value)`` (``to``
    None creates a contract) or ``"call", fn, *args`` to ``address``; ``tip`` per client."""

    def __init__(self, world: World, address: str | None = None, abi: Any = (), *,
                 tip: int = DEFAULT_TIP) -> None:
        self.world, self.address, self.abi, self.tip = world, address, ContractABI(list(abi)), tip

    def tx(self, signer: Any, to: str | None, data: bytes = b"", value: int = 0) -> PendingOp:
        try:
            gas = self.world.gateway.estimate_gas(signer.address, to, data, value)
        except (LifecycleError, TransactionFailed):
            gas = REVERT_GAS  # sent anyway: it reverts on chain, as an attacker's try would
        return PendingOp(TxSender(self.world.gateway, signer, tip=self.tip).send(
            to, data, gas=gas, value=value), "tx", lambda r: r, data)

    def call(self, signer: Any, fn: str, *args: Any) -> PendingOp:
        return self.tx(signer, self.address, self.abi.encode_call(fn, list(args)))

    def result(self, op: PendingOp) -> Any:
        """The receipt (callers look at status, logs, contract address)."""
        return self.world.gateway.receipt(op.tx_hash)


def both_sides(id_: str, run: Any) -> None:
    """Register scenario ``id_`` written once as ``run(side, tm, seed, workdir)``."""
    scenario(id_)(type(f"Scenario{id_}", (), {
        side: staticmethod(functools.partial(run, side)) for side in ("baseline", "proml")}))
