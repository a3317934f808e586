"""AES-256-GCM of dump files, streamed in chunks, and their sha256: local files only, no network.

Format of an encrypted file: the ciphertext, then GCM's 16-byte tag. The associated data is the
snapshot id (UTF-8), so a dump.enc moved under another snapshot's name does not decrypt. The
nonce (12 random bytes) is recorded in the manifest. ``decrypt_file`` writes the plaintext to a
temporary file beside dst and renames it only once the tag checks: nothing unauthenticated is
ever left at dst. Any failure (wrong key, altered or truncated bytes) raises DecryptError.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

CHUNK = 1 << 20
TAG_BYTES = 16
NONCE_BYTES = 12
KEY_BYTES = 32


class DecryptError(Exception):
    """The file did not decrypt; str() says why in words."""


def new_nonce() -> bytes:
    return os.urandom(NONCE_BYTES)


def file_digest(path: Path) -> tuple[str, int]:
    """(sha256 hex, size in bytes) of a file."""
    h = hashlib.sha256()
    size = 0
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK):
            h.update(chunk)
            size += len(chunk)
    return h.hexdigest(), size


def encrypt_file(src: Path, dst: Path, key: bytes, nonce: bytes, aad: bytes) -> tuple[str, int]:
    """Encrypt src into dst; answer (sha256 hex, size) of dst, the bytes that will be stored."""
    if len(key) != KEY_BYTES:
        raise ValueError(f"AES-256 needs a {KEY_BYTES}-byte key, not {len(key)}")
    encryptor = Cipher(algorithms.AES(key), modes.GCM(nonce)).encryptor()
    encryptor.authenticate_additional_data(aad)
    h = hashlib.sha256()
    size = 0
    with open(src, "rb") as fin, open(dst, "wb") as fout:

        def put(data: bytes) -> None:
            nonlocal size
            fout.write(data)
            h.update(data)
            size += len(data)

        while chunk := fin.read(CHUNK):
            put(encryptor.update(chunk))
        put(encryptor.finalize())
        put(encryptor.tag)
    return h.hexdigest(), size


def decrypt_file(src: Path, dst: Path, key: bytes, nonce: bytes, aad: bytes) -> int:
    """Decrypt src into dst (see the module docstring); answer the plaintext size."""
    if len(key) != KEY_BYTES:
        raise DecryptError(f"the key is {len(key)} bytes, AES-256 needs {KEY_BYTES}")
    total = src.stat().st_size
    if total < TAG_BYTES:
        raise DecryptError(f"{src.name}: {total} bytes, shorter than the {TAG_BYTES}-byte GCM tag (truncated)")
    with open(src, "rb") as fin:
        fin.seek(total - TAG_BYTES)
        tag = fin.read(TAG_BYTES)
    tmp = dst.with_name(dst.name + ".partial")
    decryptor = Cipher(algorithms.AES(key), modes.GCM(nonce, tag)).decryptor()
    decryptor.authenticate_additional_data(aad)
    remaining = total - TAG_BYTES
    size = 0
    try:
        with open(src, "rb") as fin, open(tmp, "wb") as fout:
            while remaining > 0:
                chunk = fin.read(min(CHUNK, remaining))
                if not chunk:
                    raise DecryptError(f"{src.name}: shorter than expected while reading")
                remaining -= len(chunk)
                out = decryptor.update(chunk)
                fout.write(out)
                size += len(out)
            fout.write(decryptor.finalize())
    except InvalidTag:
        tmp.unlink(missing_ok=True)
        raise DecryptError(
            f"{src.name}: AES-256-GCM authentication failed (wrong key, or the bytes were altered or truncated)"
        ) from None
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    os.replace(tmp, dst)
    return size
