"""Names a lifecycle may not use.

The DSL knows nothing of the contract language, but its class-time validation must refuse names
that the generated contract cannot carry.  This list is data; a codegen test checks that it
covers the contract language's reserved words and every identifier the code generator emits.
"""

from __future__ import annotations

import re

#: Identifiers must be plain ASCII snake/camel case, start with a letter, at most 40 characters.
IDENTIFIER = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,39}$")

#: Identifiers the generated contract defines itself (functions, storage, events, locals).
GENERATED_NAMES = frozenset(
    {
        # functions, storage, events and constants
        "admin", "register", "grant_role", "revoke_role", "state_of", "version_of", "roles",
        "domains", "approvers_of", "last_actor_of", "artefact_id", "record", "approvers",
        "last_actor", "Registered", "Transitioned", "Approved", "RoleGranted", "RoleRevoked",
        "IR_FINGERPRINT", "N_ROLES", "ADMIN_TABLE", "ALREADY", "FULL", "initialize",
        "initialized",
        # consortium governance
        "QUORUM", "MAX_DOMAINS", "GovProposal", "GovProposed", "GovVoted", "GovExecuted",
        "gov_member", "gov_allowed", "gov_admin_of", "gov_admin_domain", "gov_used",
        "gov_members", "gov_epoch", "gov_proposals", "gov_proposal", "gov_votes",
        "gov_propose", "gov_vote", "gov_execute", "gov_votes_of", "effective_roles", "kind",
        # parameters of generated functions
        "id", "salt", "digest", "locator", "inputs", "role", "account", "domain", "admin_domain",
        "registrant", "transition", "version", "key", "mask", "by_domain",
    }
)

#: Reserved words and builtins of the contract language (Vyper 0.4) and of the EVM ABI tooling.
LANGUAGE_RESERVED = frozenset(
    {
        # keywords
        "and", "as", "assert", "break", "class", "continue", "def", "del", "elif", "else",
        "except", "finally", "for", "from", "global", "if", "import", "in", "is", "lambda",
        "nonlocal", "not", "or", "pass", "raise", "return", "try", "while", "with", "yield",
        "True", "False", "None", "await", "async", "match", "case", "type",
        # vyper declarations and decorators
        "event", "interface", "struct", "flag", "enum", "implements", "uses", "initializes",
        "exports", "log", "extcall", "staticcall", "indexed", "public", "constant", "immutable",
        "transient", "external", "internal", "deploy", "view", "pure", "payable", "nonpayable",
        "nonreentrant", "reentrant", "raw_revert", "raw_log", "raw_call", "selfdestruct",
        "send", "empty", "len", "range", "convert", "concat", "slice", "keccak256", "sha256",
        "ecrecover", "ecadd", "ecmul", "extract32", "floor", "ceil", "min", "max", "abs",
        "sqrt", "isqrt", "uint2str", "method_id", "abi_encode", "abi_decode", "_abi_encode",
        "_abi_decode", "max_value", "min_value", "epsilon", "unsafe_add", "unsafe_sub",
        "unsafe_mul", "unsafe_div", "pow_mod256", "shift", "create_copy_of",
        "create_minimal_proxy_to", "create_forwarder_to", "create_from_blueprint",
        "blockhash", "blobhash", "print", "breakpoint", "as_wei_value", "self", "msg", "block",
        "tx", "chain", "this", "super", "default", "unreachable", "storage",
        "memory", "calldata", "code", "balance", "codesize", "codehash", "is_contract",
        "init", "__init__", "__default__", "wei", "ether", "gwei", "finney", "szabo",
        # types
        "address", "bool", "bytes", "bytes4", "bytes20", "bytes32", "decimal", "int8", "int128",
        "int256", "uint8", "uint16", "uint32", "uint64", "uint128", "uint256", "String",
        "Bytes", "DynArray", "HashMap", "string", "int", "uint", "fixed", "ufixed", "real",
        "function", "mapping", "contract", "modifier", "emit", "new", "delete",
        "ZERO_ADDRESS", "EMPTY_BYTES32", "MAX_INT128", "MIN_INT128",
        "MAX_DECIMAL", "MIN_DECIMAL", "MAX_UINT256", "ZERO_WEI",
        # denominations
        "ada", "babbage", "kwei", "lovelace", "mwei", "pwei", "shannon", "twei",
        # vyper 0.4 reserves this by a missing comma in its own list; keep in step
        "flagunreachable",
    }
)

RESERVED_NAMES = GENERATED_NAMES | LANGUAGE_RESERVED
#: The contract language compares reserved words case-insensitively.
RESERVED_LOWER = frozenset(n.lower() for n in RESERVED_NAMES)


def is_reserved(name: str) -> bool:
    return name in RESERVED_NAMES or name.lower() in RESERVED_LOWER
