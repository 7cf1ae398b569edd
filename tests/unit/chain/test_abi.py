"""Revert decoding, call encoding and event decoding."""

from __future__ import annotations

import pytest
from eth_abi import encode

from proml_sim.chain.abi import (
    ContractABI,
    EventCodec,
    decode_output,
    decode_revert_reason,
    encode_call,
    event_topic,
)
from proml_sim.chain.trie import keccak
from proml_sim.errors import EngineError

ABI = [
    {
        "name": "Noted",
        "type": "event",
        "anonymous": False,
        "inputs": [
            {"name": "tag", "type": "string", "indexed": True},
            {"name": "who", "type": "address", "indexed": True},
            {"name": "text", "type": "string", "indexed": False},
            {"name": "items", "type": "bytes32[]", "indexed": False},
            {"name": "n", "type": "uint256", "indexed": False},
        ],
    },
    {
        "name": "register",
        "type": "function",
        "stateMutability": "nonpayable",
        "inputs": [{"name": "salt", "type": "bytes32"}],
        "outputs": [{"name": "", "type": "bytes32"}],
    },
    {
        "name": "pair",
        "type": "function",
        "stateMutability": "view",
        "inputs": [],
        "outputs": [{"name": "", "type": "uint256"}, {"name": "", "type": "string"}],
    },
]


def test_decode_revert_reason() -> None:
    data = bytes.fromhex("08c379a0") + encode(["string"], ["AlreadyRegistered: x"])
    assert decode_revert_reason(data) == "AlreadyRegistered: x"
    assert decode_revert_reason(b"") is None
    assert decode_revert_reason(bytes.fromhex("4e487b71") + encode(["uint256"], [1])) is None
    assert decode_revert_reason(bytes.fromhex("08c379a0") + b"\x00" * 5) is None  # malformed


def test_encode_call_and_decode_output() -> None:
    salt = b"\x01" * 32
    assert encode_call(ABI, "register", [salt]) == keccak(b"register(bytes32)")[:4] + salt
    assert decode_output(ABI, "register", salt) == salt
    assert decode_output(ABI, "pair", encode(["uint256", "string"], [7, "hi"])) == (7, "hi")
    with pytest.raises(EngineError, match="no function 'nope'"):
        encode_call(ABI, "nope", [])
    with pytest.raises(EngineError, match="takes 1 argument"):
        ContractABI(ABI).encode_call("register", [])


def test_event_codec_indexed_and_dynamic_args() -> None:
    codec = EventCodec(ABI)
    topic0 = event_topic(ABI[0])
    assert topic0 == keccak(b"Noted(string,address,string,bytes32[],uint256)")
    who = "0x" + "ab" * 20
    topics = (topic0, keccak(b"release"), b"\x00" * 12 + bytes.fromhex("ab" * 20))
    data = encode(["string", "bytes32[]", "uint256"], ["hello", [b"\x02" * 32, b"\x03" * 32], 5])
    name, args = codec.decode(topics, data)
    assert name == "Noted"
    assert list(args) == ["tag", "who", "text", "items", "n"]  # declaration order
    assert args["tag"] == keccak(b"release")  # indexed dynamic -> its hash
    assert args["who"] == who
    assert args["text"] == "hello"
    assert args["items"] == (b"\x02" * 32, b"\x03" * 32)
    assert args["n"] == 5
    assert codec.topic("Noted") == topic0
    with pytest.raises(EngineError, match="matches no event"):
        codec.decode((b"\x00" * 32,), b"")
