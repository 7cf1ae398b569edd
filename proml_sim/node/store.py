"""Content-addressed off-chain store: artefact bytes behind SHA-256 digests.

* Files are hashed while they are copied, in 1 MiB chunks: constant memory for any size.
* Writes are atomic (temporary file in the same directory, ``fsync``, rename); a crash leaves
  no half-written blob, only a temporary file that the next write ignores.
* Every read re-hashes the bytes and raises :class:`BlobCorrupted` on a mismatch; if replicas
  are configured, a missing or corrupt blob is fetched from the first replica holding good
  bytes and the local copy is healed (a corrupted copy is first moved into the quarantine and
  named on stderr: kept, never overwritten).
* Replication copies each new blob to the other domains' stores (``replicas``).

Layout: ``<root>/objects/<first two hex>/<remaining 62 hex>``.
"""

from __future__ import annotations

import errno
import hashlib
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from proml_sim.errors import BlobCorrupted, StoreError
from proml_sim.fsutil import atomic_write_with, check_output_path, default_mode
from proml_sim.progress import for_file

CHUNK = 1 << 20
#: what a peer's stream must leave free on the store's disk (or half of what was free when it
#: began, on a nearly full disk): a peer that sends without end (or a blob larger than the disk
#: can spare) is stopped before the disk fills for everything else on it (the chain, other
#: blobs, other programs); checked every :data:`RESERVE_EVERY` bytes
FREE_RESERVE = 1 << 30
RESERVE_EVERY = 64 * CHUNK


def sha256_file(path: str | Path) -> tuple[str, int]:
    """(hex SHA-256, size) of a file, streamed in 1 MiB chunks."""
    h = hashlib.sha256()
    size = 0
    try:
        with open(path, "rb") as fh, for_file(fh) as bar:
            while chunk := fh.read(CHUNK):
                h.update(chunk)
                size += len(chunk)
                bar.advance(len(chunk))
    except FileNotFoundError:
        raise StoreError(f"file {path} does not exist; check the path") from None
    except IsADirectoryError:
        raise StoreError(f"{path} is a directory; pass the files inside it") from None
    return h.hexdigest(), size


@dataclass(frozen=True)
class Blob:
    digest: str  # hex SHA-256
    size: int


def check_digest(digest: str) -> str:
    d = digest.lower().removeprefix("0x")
    if len(d) != 64 or any(c not in "0123456789abcdef" for c in d):
        raise StoreError(f"{digest!r} is not a SHA-256 hex digest (64 hex characters)")
    return d


def _os_error(exc: OSError, root: Path) -> StoreError:
    if exc.errno == errno.ENOSPC:
        return StoreError(f"the store at {root} is full (no space left on device); free space "
                          "or move the node home (--home) to a larger disk")
    if exc.errno in (errno.EACCES, errno.EROFS, errno.EPERM):
        return StoreError(f"the store at {root} is not writable ({exc.strerror}); fix its "
                          "permissions or use another --home")
    return StoreError(f"the store at {root} failed: {exc}")


#: a node home's folder for damaged or stray files set aside (``<home>/quarantine/<time>/``)
QUARANTINE = "quarantine"


class BlobStore:
    """One participant's store, optionally replicating to other domains' stores."""

    def __init__(self, root: str | Path, replicas: Iterable[str | Path] = (),
                 quarantine: str | Path | None = None) -> None:
        self.root = Path(root)
        self.objects = self.root / "objects"
        self.replicas = [Path(r) for r in replicas]
        #: where a corrupted local copy goes when a replica heals it (``<dir>/<time>/blobs/``;
        #: default ``<root>/quarantine``): kept, never overwritten
        self.quarantine = Path(quarantine) if quarantine is not None else self.root / "quarantine"
        #: digest -> where its corrupted copy was kept, for the blobs healed by this store
        self.healed: dict[str, Path] = {}
        self.warn = True  # name each healed blob on stderr

    def path_of(self, digest: str) -> Path:
        d = check_digest(digest)
        return self.objects / d[:2] / d[2:]

    def has(self, digest: str) -> bool:
        return self.path_of(digest).exists()

    # -- writing ---------------------------------------------------------------------------
    def _write_stream(self, chunks: Iterator[bytes], replicate: bool = True,
                      expect: str | None = None) -> Blob:
        try:
            self.objects.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=self.objects, prefix=".incoming-")
        except OSError as exc:
            raise _os_error(exc, self.root) from exc
        h = hashlib.sha256()
        size = 0
        try:
            os.fchmod(fd, default_mode())  # blobs honour the umask, like any file the user makes
            with os.fdopen(fd, "wb") as out:
                for chunk in chunks:
                    h.update(chunk)
                    size += len(chunk)
                    out.write(chunk)
                out.flush()
                os.fsync(out.fileno())
            digest = h.hexdigest()
            if expect is not None and digest != expect:  # never keep bytes nobody asked for
                raise BlobCorrupted(f"the bytes received hash to {digest}, not to the digest "
                                    f"asked for ({expect}); nothing was stored")
            final = self.path_of(digest)
            final.parent.mkdir(exist_ok=True)
            os.replace(tmp, final)
        except StoreError:
            Path(tmp).unlink(missing_ok=True)
            raise
        except OSError as exc:
            Path(tmp).unlink(missing_ok=True)
            raise _os_error(exc, self.root) from exc
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        blob = Blob(digest, size)
        if replicate:
            self._replicate(blob)
        return blob

    def put_file(self, path: str | Path) -> Blob:
        """Store a file's bytes (streamed); returns its digest and size."""
        def chunks() -> Iterator[bytes]:
            try:
                with open(path, "rb") as fh, for_file(fh, "storing") as bar:
                    while chunk := fh.read(CHUNK):
                        bar.advance(len(chunk))
                        yield chunk
            except FileNotFoundError:
                raise StoreError(f"file {path} does not exist; check the path") from None
            except IsADirectoryError:
                raise StoreError(f"{path} is a directory; pass the files inside it") from None

        return self._write_stream(chunks())

    def put_bytes(self, data: bytes) -> Blob:
        return self._write_stream(iter([data]))

    def put_stream(self, chunks: Iterable[bytes], *, expect: str) -> Blob:
        """Store streamed bytes (from a peer) only if they hash to ``expect``; else
        :class:`BlobCorrupted` and nothing is kept.  Not replicated (another domain's blob).
        A stream that would leave the disk less than :data:`FREE_RESERVE` free (or half of
        what was free when it began) is stopped (:class:`StoreError`, nothing kept)."""
        expect = check_digest(expect)

        def guarded() -> Iterator[bytes]:
            received = checked = 0
            floor = None  # 1 GiB, or half of what was free at the start on a nearly full disk
            for chunk in chunks:
                received += len(chunk)
                if floor is None or received - checked >= RESERVE_EVERY:
                    checked = received
                    free = shutil.disk_usage(self.objects).free
                    if floor is None:
                        floor = min(FREE_RESERVE, free // 2)
                    if free < floor:
                        raise StoreError(
                            f"stopped receiving blob {expect} after {received:,} bytes: "
                            f"{self.root}'s disk would keep less than {floor:,} bytes free (a "
                            "peer sending without end, or a blob larger than the disk can "
                            "spare); nothing was kept; free space, or fetch it from another "
                            "peer")
                yield chunk

        return self._write_stream(guarded(), replicate=False, expect=expect)

    def _replicate(self, blob: Blob) -> None:
        for replica in self.replicas:
            other = BlobStore(replica)
            if other.has(blob.digest):
                continue
            with open(self.path_of(blob.digest), "rb") as fh:
                other._write_stream(iter(lambda fh=fh: fh.read(CHUNK), b""))  # type: ignore[misc]

    # -- reading ---------------------------------------------------------------------------
    def _verified_path(self, digest: str) -> Path:
        d = check_digest(digest)
        path = self.path_of(d)
        problem = None
        if path.exists():
            got, _ = sha256_file(path)
            if got == d:
                return path
            problem = BlobCorrupted(
                f"blob {d} at {path} is corrupted: its bytes hash to {got}; restore it from a "
                "replica or the original file (`proml verify` lists every such blob)"
            )
        for replica in self.replicas:  # heal from the first good replica
            rpath = BlobStore(replica).path_of(d)
            if rpath.exists() and sha256_file(rpath)[0] == d:
                if problem is not None:  # the damaged copy is kept, and said
                    self._keep_damaged(path, d, f"replica {replica}")
                with open(rpath, "rb") as fh:  # heal the local copy only: never write into
                    # other domains' stores while repairing this one
                    self._write_stream(iter(lambda fh=fh: fh.read(CHUNK), b""),  # type: ignore[misc]
                                       replicate=False)
                return path
        if problem is not None:
            raise problem
        raise StoreError(
            f"blob {d} is not in the store at {self.root}"
            + (f" nor in its replicas {[str(r) for r in self.replicas]}" if self.replicas else "")
            + "; add the file again or configure a replica that has it"
        )

    def _keep_damaged(self, path: Path, digest: str, source: str) -> None:
        """Move a corrupted copy in this store into its quarantine before ``source``'s good
        bytes replace it, and say so on stderr (damage is named, not silently mended)."""
        dest = self.quarantine / time.strftime("%Y%m%dT%H%M%S") / "blobs" / digest
        n = 1
        while dest.exists():
            dest, n = dest.with_name(f"{digest}-{n}"), n + 1
        try:
            dest.parent.mkdir(parents=True, exist_ok=True)
            path.rename(dest)
        except FileNotFoundError:
            return  # another process healed it first (and kept the damaged copy)
        except OSError as exc:
            raise StoreError(f"blob {digest} at {path} is corrupted and a replica has it, but "
                             f"the damaged copy cannot be kept in {dest.parent} ({exc}); fix "
                             "the store's permissions") from None
        self.healed[digest] = dest
        if self.warn:
            sys.stderr.write(f"warning: blob {digest} at {path} was corrupted; restored from "
                             f"{source} (the damaged copy is kept as {dest})\n")

    def get(self, digest: str) -> bytes:
        """The blob's bytes, verified against the digest."""
        return self._verified_path(digest).read_bytes()

    def open(self, digest: str) -> BinaryIO:
        """A file object on the verified blob (for large blobs)."""
        return open(self._verified_path(digest), "rb")

    def export(self, digest: str, dest: str | Path) -> Path:
        """Copy a verified blob to ``dest`` (atomically; its directory must exist)."""
        dest = check_output_path(dest)
        src = self._verified_path(digest)
        with open(src, "rb") as fh:
            return atomic_write_with(dest, lambda out: shutil.copyfileobj(fh, out, CHUNK))

    def digests(self) -> Iterator[str]:
        """Every digest this store holds a blob for (by file name; not re-hashed here)."""
        if not self.objects.is_dir():
            return
        for sub in sorted(self.objects.iterdir()):
            if len(sub.name) != 2 or not sub.is_dir():
                continue
            for f in sorted(sub.iterdir()):
                d = sub.name + f.name
                if len(d) == 64 and all(c in "0123456789abcdef" for c in d):
                    yield d

    def sync_to(self, replica: str | Path) -> dict[str, int]:
        """Copy every intact blob this store holds that ``replica`` lacks or holds corrupted
        bytes of; a replica's valid blob is never overwritten.  Every copy is hash-checked
        (the source on read, the copy as it is written).  Returns counts: ``copied``,
        ``present`` (already valid there), ``repaired`` (the replica's copy was corrupt: it
        is kept in the replica's ``quarantine/``, named on stderr, and replaced), ``skipped``
        (this store's own copy is corrupt; ``proml verify`` names it)."""
        other = BlobStore(replica)
        counts = {"copied": 0, "present": 0, "repaired": 0, "skipped": 0}
        for d in self.digests():
            there = other.path_of(d)
            damaged = False
            if there.exists():
                if sha256_file(there)[0] == d:
                    counts["present"] += 1
                    continue
                damaged = True
            src = self.path_of(d)
            if sha256_file(src)[0] != d:
                counts["skipped"] += 1
                continue
            if damaged:  # the replica's damaged copy goes into its quarantine, named
                other.warn = self.warn
                other._keep_damaged(there, d, str(self.root))
            with open(src, "rb") as fh:
                blob = other._write_stream(iter(lambda fh=fh: fh.read(CHUNK), b""),  # type: ignore[misc]
                                           replicate=False)
            if blob.digest != d:  # the source changed under us: never leave a wrong name
                raise BlobCorrupted(f"blob {d} changed while it was copied to {replica}; run "
                                    "`proml replica sync` again")
            counts["repaired" if damaged else "copied"] += 1
        return counts

    def check(self, digest: str) -> str | None:
        """None if the blob is present and intact, else a sentence naming the problem."""
        try:
            self._verified_path(digest)
        except StoreError as exc:
            return str(exc)
        return None
