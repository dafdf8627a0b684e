"""Zip archives from untrusted users (torch checkpoints, TorchScript, ``.npz``), judged from their directory
before a single record is inflated: what a record *declares* is checked, and :mod:`zipfile` never returns more
bytes than a record declares, so nothing read later can exceed what was checked here."""

from __future__ import annotations

import io
import zipfile
from collections.abc import Callable
from dataclasses import dataclass

MAX_UPLOAD = 200 * 2**20  # the app's upload limit (.streamlit/config.toml, server.maxUploadSize) and the CLI's


@dataclass(frozen=True)
class ZipLimits:
    """Caps on a zip's declared contents; ``compressed`` says which member names may be deflated at all."""

    member_bytes: int
    total_bytes: int
    ratio: float = 100.0  # largest inflated/deflated size of a deflated member...
    ratio_from: int = 4 * 2**20  # ...checked on members that inflate to more than this
    members: int = 10_000
    compressed: Callable[[str], bool] = lambda name: True
    only: tuple[str, ...] = ()  # when given, the only record names allowed


def mib(n: float) -> str:
    return f"{n / 2**20:,.1f} MiB"


def zip_records(source, limits: ZipLimits, error: type[ValueError]) -> tuple[zipfile.ZipFile, list[zipfile.ZipInfo]]:
    """The open archive and its records, or ``error`` naming the first record that is encrypted, compressed where
    it may not be, or too large (alone, in total, or by its compression ratio)."""
    try:
        zf = zipfile.ZipFile(io.BytesIO(source) if isinstance(source, bytes | bytearray) else source)
    except (zipfile.BadZipFile, OSError, ValueError, EOFError) as e:
        raise error(f"not a readable zip archive ({e})") from e
    infos = zf.infolist()
    if len(infos) > limits.members:
        raise error(f"the archive holds {len(infos):,} records (at most {limits.members:,})")
    if len({i.filename for i in infos}) != len(infos):
        raise error("the archive holds two records with the same name")
    extra = [i.filename for i in infos if limits.only and i.filename not in limits.only]
    if extra:
        raise error(f"unexpected record(s) {extra[:5]}; it may hold only {', '.join(limits.only)}")
    total = 0
    for i in infos:
        if i.flag_bits & 0x1:
            raise error(f"record '{i.filename}' is encrypted")
        if i.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
            raise error(f"record '{i.filename}' uses an unsupported compression ({i.compress_type})")
        if i.compress_type != zipfile.ZIP_STORED and not limits.compressed(i.filename):
            raise error(f"record '{i.filename}' is compressed ({mib(i.compress_size)} inflating to "
                        f"{mib(i.file_size)}); this format stores its data uncompressed")
        if i.compress_type == zipfile.ZIP_STORED and i.compress_size != i.file_size:
            raise error(f"record '{i.filename}' declares {i.file_size} bytes but stores {i.compress_size}")
        if i.file_size > limits.member_bytes:
            raise error(f"too large: record '{i.filename}' inflates to {mib(i.file_size)} "
                        f"(at most {mib(limits.member_bytes)})")
        if i.file_size > limits.ratio_from and i.file_size > limits.ratio * max(i.compress_size, 1):
            raise error(f"too large: record '{i.filename}' inflates {i.file_size / max(i.compress_size, 1):,.0f}x "
                        f"({mib(i.compress_size)} to {mib(i.file_size)}; at most {limits.ratio:.0f}x), "
                        "a compression bomb")
        total += i.file_size
        if total > limits.total_bytes:
            raise error(f"too large: the archive inflates to more than {mib(limits.total_bytes)}")
    return zf, infos
