"""Chain layer: the :class:`ChainBackend` interface, its engines (py-evm, revm, JSON-RPC) and
:func:`make_backend`, accounts and ABI helpers.

Imports only from :mod:`proml_sim.errors` and third-party libraries.
"""

from typing import TYPE_CHECKING

from proml_sim._lazy import getattr_for, table

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

__getattr__ = getattr_for(__name__, table((
    ("proml_sim.chain.abi", "ContractABI EventCodec decode_output decode_revert_reason "
     "encode_call"),
    ("proml_sim.chain.accounts", "KeyRing Signer TxSender derive_private_keys send_and_mine"),
    ("proml_sim.chain.base", "BlockInfo CallResult ChainBackend Log Receipt"),
    ("proml_sim.chain.engines", "ENGINES make_backend"),
    ("proml_sim.chain.pyevm", "FAUCET_SEED PyEVMBackend"),
    ("proml_sim.chain.revm", "RevmBackend"),
    ("proml_sim.chain.rpc", "RPCBackend"),
)), globals())

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
