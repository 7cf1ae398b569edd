"""EIP-170: a lifecycle whose contract is too large to deploy is refused with the fix, and one
just over the limit optimised for gas is compiled for size instead."""

from __future__ import annotations

import pytest
from vyper.compiler import compile_code
from vyper.compiler.settings import Settings
from vyper.warnings import ContractSizeLimit

from proml_sim.chain.accounts import KeyRing
from proml_sim.chain.client import LifecycleClient, compile_layout
from proml_sim.chain.engines import make_backend
from proml_sim.compiler import EVM_VERSION, MAX_CODE_SIZE
from proml_sim.dsl import Artefact, Consortium, Role, State
from proml_sim.errors import ContractTooLarge
from proml_sim.sim import domain_id


def long_lifecycle(n: int) -> type[Artefact]:
    """A consortium lifecycle of ``n`` forward steps (3 domains' approvals each, separation of
    duty of accounts and domains) and ``n - 1`` steps back."""
    ns: dict[str, object] = {"op": Role(), "ev": Role(), "governance": Consortium(quorum=2)}
    states = [State(initial=True, by=ns["op"], evidence=True),
              *(State() for _ in range(n - 1)), State(final=True)]
    for i, s in enumerate(states):
        ns[f"s{i}"] = s
    for i in range(n):
        before = [f"t{i - 1}"] if i else []
        ns[f"t{i}"] = states[i].to(states[i + 1], by=[ns["ev"], ns["op"]], approvals=3,
                                   count="domains", evidence=True, separate_from=before,
                                   separate_domain_from=before)
        if i + 1 < n:
            ns[f"b{i}"] = states[i + 1].to(states[i], by=ns["op"], approvals=2, evidence=True)
    return type(f"Long{n}", (Artefact,), ns)


def test_a_registry_over_the_limit_is_refused_with_the_fix_and_the_factory_deploys() -> None:
    lc = long_lifecycle(6)
    ring = KeyRing.from_seed("size", 1)
    backend = make_backend("pyevm", funded=ring.addresses)
    admin = ring.signer(ring.addresses[0])
    big = compile_layout(lc)
    assert len(big.main.runtime_bytecode) > MAX_CODE_SIZE
    with pytest.raises(ContractTooLarge, match=r"Long6's registry contract has [\d,]+ bytes .*"
                                               r"EIP-170.*factory or clone layout") as err:
        LifecycleClient.deploy(backend, big, admin, domain_id("a"))
    assert err.value.exit_code == 2
    client = LifecycleClient.deploy(backend, compile_layout(lc, "factory"), admin,
                                    domain_id("a"))
    assert client.address != big.main.name and client.ir == big.ir
    longer = compile_layout(long_lifecycle(7), "factory")  # even a contract per artefact is too
    with pytest.raises(ContractTooLarge, match=r"factory artefact contract .* fewer transitions"):
        LifecycleClient.deploy(backend, longer, admin, domain_id("a"))


def test_a_contract_over_the_limit_optimised_for_gas_is_compiled_for_size() -> None:
    big = compile_layout(long_lifecycle(7))
    with pytest.warns(ContractSizeLimit):  # vyper's own warning
        gas = compile_code(big.main.source, output_formats=["bytecode_runtime"],
                           settings=Settings(evm_version=EVM_VERSION))
    assert len(big.main.runtime_bytecode) < len(gas["bytecode_runtime"]) // 2 - 1
    small = compile_layout(long_lifecycle(2))  # under the limit: optimised for gas as before
    gas = compile_code(small.main.source, output_formats=["bytecode_runtime"],
                       settings=Settings(evm_version=EVM_VERSION))
    assert small.main.runtime_bytecode.hex() == gas["bytecode_runtime"].removeprefix("0x")
