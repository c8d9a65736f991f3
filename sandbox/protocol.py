"""Messages between the harness, the fork server and its workers: length-prefixed JSON.

JSON, not pickle, in both directions: a worker's reply carries the program's output, and nothing a
program writes must ever be able to run code in the harness.
"""

from __future__ import annotations

import base64
import json
import socket
import struct
from typing import Any, Mapping

_HEADER = struct.Struct("!I")
MAX_MESSAGE = 1 << 30


class ChannelClosed(EOFError):
    """The other side of a socket went away."""


def send_msg(sock: socket.socket, obj: Mapping[str, Any]) -> None:
    data = json.dumps(obj).encode()
    sock.sendall(_HEADER.pack(len(data)) + data)


def recv_msg(sock: socket.socket) -> dict[str, Any]:
    (size,) = _HEADER.unpack(_recv_exact(sock, _HEADER.size))
    if size > MAX_MESSAGE:
        raise ChannelClosed(f"message of {size} bytes is over the {MAX_MESSAGE} byte limit")
    return json.loads(_recv_exact(sock, size))


def _recv_exact(sock: socket.socket, size: int) -> bytes:
    chunks = []
    while size:
        chunk = sock.recv(min(size, 1 << 20))
        if not chunk:
            raise ChannelClosed("connection closed")
        chunks.append(chunk)
        size -= len(chunk)
    return b"".join(chunks)


def encode_files(files: Mapping[str, bytes] | None) -> dict[str, str]:
    return {name: base64.b64encode(bytes(content)).decode("ascii") for name, content in (files or {}).items()}


def decode_files(files: Mapping[str, str]) -> dict[str, bytes]:
    return {name: base64.b64decode(content) for name, content in files.items()}
