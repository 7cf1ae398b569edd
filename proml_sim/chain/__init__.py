"""Chain layer: the :class:`ChainBackend` interface, its engines (py-evm, revm, JSON-RPC) and
:func:`make_backend`, accounts and ABI helpers.

Imports only from :mod:`proml_sim.errors` and third-party libraries.
"""

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the names below are imported on first use (py-evm takes ~0.5 s to load)
    from proml_sim.chain.abi import (
        ContractABI,
        EventCodec,
        decode_output,
        decode_revert_reason,
        encode_call,
    )
    from proml_sim.chain.accounts import (
        KeyRing,
        Signer,
        TxSender,
        derive_private_keys,
        send_and_mine,
    )
    from proml_sim.chain.base import BlockInfo, CallResult, ChainBackend, Log, Receipt
    from proml_sim.chain.engines import ENGINES, make_backend
    from proml_sim.chain.pyevm import FAUCET_SEED, PyEVMBackend
    from proml_sim.chain.revm import RevmBackend
    from proml_sim.chain.rpc import RPCBackend

_WHERE = {
    **dict.fromkeys(("ContractABI", "EventCodec", "decode_output", "decode_revert_reason",
                     "encode_call"), "abi"),
    **dict.fromkeys(("KeyRing", "Signer", "TxSender", "derive_private_keys", "send_and_mine"),
                    "accounts"),
    **dict.fromkeys(("BlockInfo", "CallResult", "ChainBackend", "Log", "Receipt"), "base"),
    **dict.fromkeys(("ENGINES", "make_backend"), "engines"),
    **dict.fromkeys(("FAUCET_SEED", "PyEVMBackend"), "pyevm"),
    "RevmBackend": "revm",
    "RPCBackend": "rpc",
}


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


__all__ = [
    "ENGINES",
    "FAUCET_SEED",
    "BlockInfo",
    "CallResult",
    "ChainBackend",
    "ContractABI",
    "EventCodec",
    "KeyRing",
    "Log",
    "PyEVMBackend",
    "RPCBackend",
    "Receipt",
    "RevmBackend",
    "Signer",
    "TxSender",
    "decode_output",
    "decode_revert_reason",
    "derive_private_keys",
    "encode_call",
    "make_backend",
    "send_and_mine",
]
