"""Chain layer: the :class:`ChainBackend` interface, its engines (py-evm, revm, JSON-RPC) and
:func:`make_backend`, accounts and ABI helpers.

Imports only from :mod:`proml_sim.errors` and third-party libraries.
"""

from proml_sim.chain.abi import (
    ContractABI,
    EventCodec,
    decode_output,
    decode_revert_reason,
    encode_call,
)
from proml_sim.chain.accounts import KeyRing, Signer, TxSender, derive_private_keys, send_and_mine
from proml_sim.chain.base import BlockInfo, CallResult, ChainBackend, Log, Receipt
from proml_sim.chain.engines import ENGINES, make_backend
from proml_sim.chain.pyevm import FAUCET_SEED, PyEVMBackend
from proml_sim.chain.revm import RevmBackend
from proml_sim.chain.rpc import RPCBackend

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
