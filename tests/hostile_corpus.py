"""A hostile upload corpus, built at run time (small on disk), for tests/test_hostile.py and bench/hostile.py.

Every case is a file an attacker could upload (or a name they could type), what vizcore must answer, and the
code path the app and the CLI share (:func:`run_case`). Attacks aim at files in a ``victim`` folder, so a test
can prove nothing outside the workspace was read into a model, created or changed.
"""

from __future__ import annotations

import io
import os
import pickle
import struct
import zipfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

MiB, GiB = 2**20, 2**30


# ------------------------------------------------------------------------------------- hostile TorchScript modules


class ReadsFile(nn.Module):
    def __init__(self, path: str):
        super().__init__()
        self.path = path

    def forward(self, x):
        secret = torch.from_file(self.path, False, 64, dtype=torch.uint8)
        return x.flatten(1)[:, :10] + secret[:10].float()


class WritesFile(nn.Module):
    """Creates (shared=True) and overwrites a file during the fit check, as in the issue."""

    def __init__(self, path: str):
        super().__init__()
        self.path = path

    def forward(self, x):
        t = torch.from_file(self.path, True, 64, dtype=torch.uint8)
        t.fill_(65)
        return x.flatten(1)[:, :10] + t[:10].float() * 0.0  # used, so TorchScript keeps it


class WritesModule(nn.Module):
    """Writes a Python module that would run a shell command once imported."""

    def __init__(self, path: str):
        super().__init__()
        self.path = path
        self.payload = torch.tensor(list(b"import os; os.system('touch PWNED')\n"), dtype=torch.uint8)

    def forward(self, x):
        t = torch.from_file(self.path, True, self.payload.numel(), dtype=torch.uint8)
        t.copy_(self.payload)
        return x.flatten(1)[:, :10] + t[:10].float() * 0.0


class LoopsWhenBatched(nn.Module):
    """Passes a 1-image check, then never returns for a batch."""

    def forward(self, x):
        i = 0
        if x.size(0) > 1:
            while i >= 0:
                i += 1
        return x.flatten(1)[:, :10]


class Allocates12GB(nn.Module):
    def forward(self, x):
        big = torch.ones([3221225472])  # 12 GiB of float32, touched
        return x.flatten(1)[:, :10] + big[:10]


class NoParameters(nn.Module):
    """Fits digits (64 inputs -> 10 outputs) with no weights at all: accepted, and model_device works."""

    def forward(self, x):
        return x.flatten(1)[:, :10] * 2.0


class ConstantOutput(nn.Module):
    def forward(self, x):
        return torch.zeros([1, 10])


class Prints(nn.Module):
    def forward(self, x):
        print("hello from the server")
        return x.flatten(1)[:, :10]


class SetsState(nn.Module):
    """``__setstate__`` runs inside torch.jit.load itself."""

    def __init__(self):
        super().__init__()
        self.w = nn.Parameter(torch.zeros(1))

    @torch.jit.export
    def __getstate__(self):
        return (self.w, self.training)

    @torch.jit.export
    def __setstate__(self, state: tuple[torch.Tensor, bool]):
        self.w = state[0]
        self.training = state[1]

    def forward(self, x):
        return x.flatten(1)[:, :10] + self.w


class MutatesWeights(nn.Module):
    def __init__(self):
        super().__init__()
        self.w = nn.Parameter(torch.zeros(10))

    def forward(self, x):
        self.w.add_(1.0)
        return x.flatten(1)[:, :10] + self.w


class ValueSizedAllocation(nn.Module):
    def forward(self, x):
        n = int(x.sum() * 1e9)
        return x.flatten(1)[:, :10] + torch.zeros([n]).sum()


class CountsCalls(nn.Module):
    def __init__(self):
        super().__init__()
        self.calls = 0

    def forward(self, x):
        self.calls += 1
        return x.flatten(1)[:, :10]


class BatchDependent(nn.Module):
    def forward(self, x):
        f = x.flatten(1)[:, :10]
        return f - f.mean(0, keepdim=True)


class NaNOutput(nn.Module):
    def forward(self, x):
        return x.flatten(1)[:, :10] * float("nan")


class Hogs(nn.Module):
    """Only big matrix products, no loop: bounded by shape, but about 2.6 TFLOP per call, more CPU than the fit
    check allows on any CPU of today."""

    def forward(self, x):
        a = torch.ones([6000, 6000]) / 6000.0
        a = a @ a
        a = a @ a
        a = a @ a
        a = a @ a
        a = a @ a
        a = a @ a
        return x.flatten(1)[:, :10] + a[0, :10]


def _script(module: nn.Module, trace: bool = False) -> bytes:
    buf = io.BytesIO()
    sm = torch.jit.trace(module, torch.zeros(2, 1, 8, 8)) if trace else torch.jit.script(module)
    torch.jit.save(sm, buf)
    return buf.getvalue()


def _good_ts() -> bytes:
    from vizcore.models import build_model

    return _script(build_model("cnn_s", (1, 8, 8), 10, seed=0).eval(), trace=True)


def _rezip(data: bytes, deflate: Callable[[str], bool]) -> bytes:
    """The same archive with the records ``deflate`` names deflated."""
    src, out = zipfile.ZipFile(io.BytesIO(data)), io.BytesIO()
    with zipfile.ZipFile(out, "w") as dst:
        for i in src.infolist():
            dst.writestr(i.filename, src.read(i), zipfile.ZIP_DEFLATED if deflate(i.filename) else zipfile.ZIP_STORED)
    return out.getvalue()


# ------------------------------------------------------------------------------------- zip bombs without the bytes


def _zeros_deflated(n: int, head: bytes = b"") -> tuple[bytes, int]:
    """A raw deflate stream of ``head`` followed by ``n`` zero bytes, and its CRC, built from one 1 MiB block
    (a full flush resets the dictionary, so every further block compresses to the same bytes)."""
    c = zlib.compressobj(9, zlib.DEFLATED, -15)
    first = c.compress(head) + c.flush(zlib.Z_FULL_FLUSH)
    block = c.compress(bytes(MiB)) + c.flush(zlib.Z_FULL_FLUSH)
    assert n % MiB == 0
    crc = zlib.crc32(head)
    one = bytes(MiB)
    for _ in range(n // MiB):
        crc = zlib.crc32(one, crc)
    return first + block * (n // MiB) + c.flush(), crc


def _raw_zip(members: list[tuple[str, bytes, int, int, int]]) -> bytes:
    """A zip of (name, stored bytes, method, declared size, crc) records, written by hand (sizes < 4 GiB)."""
    out, central = io.BytesIO(), []
    for name, payload, method, size, crc in members:
        off = out.tell()
        nb = name.encode()
        out.write(struct.pack("<IHHHHHIIIHH", 0x04034B50, 20, 0, method, 0, 0x21, crc, len(payload), size,
                              len(nb), 0) + nb + payload)
        central.append(struct.pack("<IHHHHHHIIIHHHHHII", 0x02014B50, 20, 20, 0, method, 0, 0x21, crc,
                                   len(payload), size, len(nb), 0, 0, 0, 0, 0, off) + nb)
    cd = out.tell()
    for c in central:
        out.write(c)
    out.write(struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, len(central), len(central), out.tell() - cd, cd, 0))
    return out.getvalue()


def _npy(a: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.lib.format.write_array(buf, a, allow_pickle=True)
    return buf.getvalue()


def _npz(**arrays) -> bytes:
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return buf.getvalue()


def _stored(name: str, payload: bytes) -> tuple:
    return (name, payload, 0, len(payload), zlib.crc32(payload))


def _deflated(name: str, n: int, head: bytes = b"") -> tuple:
    stream, crc = _zeros_deflated(n, head)
    return (name, stream, 8, len(head) + n, crc)


def _npy_header(dtype: str, shape: tuple) -> bytes:
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(buf, {"descr": dtype, "fortran_order": False, "shape": shape})
    return buf.getvalue()


X = np.random.default_rng(0).integers(0, 256, (40, 8, 8), dtype=np.uint8)
Y = np.arange(40) % 4


def npz_label_1e9() -> bytes:
    y = Y.copy()
    y[0] = 10**9
    return _npz(x=X, y=y)


def npz_bomb_member() -> bytes:
    """x.npy: 1.2 MB deflated, a valid .npy of 1.2 GB inflated (zeros)."""
    n = 1200 * MiB
    return _raw_zip([_deflated("x.npy", n, _npy_header("|u1", (n // 64, 8, 8))), _stored("y.npy", _npy(Y))])


def npz_8gb_shape() -> bytes:
    """x.npy declares 8 GiB of pixels in its header and holds 64 bytes."""
    return _raw_zip([_stored("x.npy", _npy_header("|u1", (2**27, 8, 8)) + bytes(64)), _stored("y.npy", _npy(Y))])


def npz_extra_1gb_member() -> bytes:
    return _raw_zip([_stored("x.npy", _npy(X)), _stored("y.npy", _npy(Y)), _deflated("junk.bin", GiB)])


def ckpt_deflated_1gb() -> bytes:
    """A torch.save zip (0.97 MB) whose tensor record is a deflated 1 GiB, as in the issue."""
    buf = io.BytesIO()
    torch.save({"fc1.weight": torch.zeros(10, 64), "fc1.bias": torch.zeros(10)}, buf)
    src = zipfile.ZipFile(io.BytesIO(buf.getvalue()))
    members = []
    for i in src.infolist():
        if i.filename.endswith("/data/0"):
            members.append(_deflated(i.filename, GiB))
        else:
            members.append(_stored(i.filename, src.read(i)))
    return _raw_zip(members)


def ckpt_declares_huge_tensor() -> bytes:
    """A valid torch.save zip whose data.pkl declares a storage of 2**31 - 1 elements."""
    buf = io.BytesIO()
    torch.save({"w": torch.zeros(12345)}, buf)
    src, out = zipfile.ZipFile(io.BytesIO(buf.getvalue())), io.BytesIO()
    with zipfile.ZipFile(out, "w") as dst:
        for i in src.infolist():
            payload = src.read(i)
            if i.filename.endswith("data.pkl"):
                old = b"M" + struct.pack("<H", 12345)
                assert old in payload
                payload = payload.replace(old, b"J" + struct.pack("<i", 2**31 - 1))
            dst.writestr(i.filename, payload)
    return out.getvalue()


class Exploit:
    """Unpickling this runs a shell command (a real payload)."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


def ckpt_pickle_payload(victim: Path) -> bytes:
    buf = io.BytesIO()
    torch.save({"fc1.weight": Exploit(victim / "PWNED")}, buf)
    return buf.getvalue()


def png_bomb() -> bytes:
    """A 180 byte PNG that declares 100000 x 100000 pixels."""
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
    idat = zlib.compress(bytes(1000))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 100_000, 100_000, 8, 0, 0, 0, 0))
            + chunk(b"IDAT", idat) + chunk(b"IEND", b""))


# ------------------------------------------------------------------------------------- the cases


@dataclass
class Case:
    name: str
    kind: str  # "model", "npz", "image-folder" or "name"
    build: Callable[[Path], object]  # victim folder -> bytes (or a name)
    expect: str  # regex the refusal must match; "" when the upload is accepted
    arch: str | None = None
    child: bool = False  # reaches the TorchScript child process (slower)


def _vic(cls, file):
    return lambda v: _script(cls(str(v / file)))


CASES = [
    Case("ts-from-file-read", "model", _vic(ReadsFile, "passwd"), r"uses aten::from_file \(reading or writing a file\)"),
    Case("ts-from-file-write", "model", _vic(WritesFile, "created.bin"), r"uses aten::from_file"),
    Case("ts-write-then-import", "model", _vic(WritesModule, "evil_module.py"), r"uses aten::from_file"),
    Case("ts-loop-when-batched", "model", lambda v: _script(LoopsWhenBatched()), r"uses prim::Loop \(a loop"),
    Case("ts-print", "model", lambda v: _script(Prints()), r"uses prim::Print \(printing\)"),
    Case("ts-setstate", "model", lambda v: _script(SetsState()), r"defines __setstate__/__getstate__, code that torch.jit.load would run"),
    Case("ts-deflated-data", "model", lambda v: _rezip(_good_ts(), lambda n: "/data/" in n),
         r"record 'archive/data/0' is compressed"),
    Case("ts-12gb-allocation", "model", lambda v: _script(Allocates12GB()), r"too large: the model needs more than",
         child=True),
    Case("ts-constant-output", "model", lambda v: _script(ConstantOutput()),
         r"for a batch of 6 the model outputs \[1, 10\], not \[6, 10\]", child=True),
    Case("ts-no-parameters", "model", lambda v: _script(NoParameters()), "", child=True),
    Case("ts-cpu-hog", "model", lambda v: _script(Hogs()), r"more than \d+ s of CPU", child=True),
    Case("ts-mutates-weights", "model", lambda v: _script(MutatesWeights()),
         r"changes the model's own weights in place \(aten::add_\)", child=True),
    Case("ts-value-sized-allocation", "model", lambda v: _script(ValueSizedAllocation()),
         r"turns tensor values into numbers \(aten::Int\)", child=True),
    Case("ts-counts-calls", "model", lambda v: _script(CountsCalls()), r"uses prim::SetAttr", child=True),
    Case("ts-batch-dependent", "model", lambda v: _script(BatchDependent()),
         r"depends on the other images in its batch", child=True),
    Case("ts-nan-output", "model", lambda v: _script(NaNOutput()), r"not finite", child=True),
    Case("ts-good", "model", lambda v: _good_ts(), "", child=True),
    Case("ckpt-deflated-1gb-record", "model", lambda v: ckpt_deflated_1gb(), r"record '.*data/0' is compressed",
         arch="linear"),
    Case("ckpt-declares-huge-tensor", "model", lambda v: ckpt_declares_huge_tensor(),
         r"too large: the checkpoint declares a tensor of 2,147,483,647 elements", arch="linear"),
    Case("ckpt-pickle-payload", "model", ckpt_pickle_payload, r"refused: this checkpoint contains Python objects",
         arch="linear"),
    Case("ckpt-legacy-pickle", "model", lambda v: pickle.dumps({"w": Exploit(v / "PWNED")}, protocol=2),
         r"refused: a legacy", arch="linear"),
    Case("safetensors-garbage", "model", lambda v: b"\x0d\x00\x00\x00\x00\x00\x00\x00{garbage....}",
         "not a valid safetensors", arch="linear"),
    Case("npz-label-1e9", "npz", lambda v: npz_label_1e9(), r"labels run up to 1000000000, but at most 1000 classes"),
    Case("npz-bomb-member", "npz", lambda v: npz_bomb_member(), r"too large: record 'x.npy' inflates to 1,200"),
    Case("npz-8gb-shape", "npz", lambda v: npz_8gb_shape(), r"too large: 8,589,934,592 pixel values"),
    Case("npz-extra-1gb-member", "npz", lambda v: npz_extra_1gb_member(), r"unexpected record\(s\) \['junk.bin'\]"),
    Case("npz-nan", "npz", lambda v: _npz(x=np.where(X > 128, np.nan, X / 255), y=Y), "NaN or infinite"),
    Case("npz-complex", "npz", lambda v: _npz(x=X.astype(np.complex64), y=Y), "complex numbers"),
    Case("npz-float-labels", "npz", lambda v: _npz(x=X, y=Y + 0.5), r"integer class labels 0..K-1, got float64"),
    Case("npz-rgba-last", "npz", lambda v: _npz(x=np.stack([X] * 4, -1), y=Y), r"4 channels \(RGBA\?\)"),
    Case("npz-string-labels", "npz", lambda v: _npz(x=X, y=np.array([f"c{i}" for i in Y])), r"integer class labels .* got <U2"),
    Case("npz-zero-images", "npz", lambda v: _npz(x=np.zeros((0, 8, 8), np.uint8), y=np.zeros(0, int)), "holds no images"),
    Case("npz-one-class", "npz", lambda v: _npz(x=X, y=np.zeros(40, int)), "at least 2 classes"),
    Case("npz-object", "npz", lambda v: _npz(x=np.array([{"a": 1}] * 4, dtype=object), y=np.zeros(4, int)),
         "holds Python objects"),
    Case("npz-negative-label", "npz", lambda v: _npz(x=X, y=Y - 1), r"labels must be in 0..2"),
    Case("npz-too-many-names", "npz", lambda v: _npz(x=X, y=Y, class_names=np.array([str(i) for i in range(1001)])),
         "at most 1000 class names"),
    Case("npz-lying-header", "npz", lambda v: _raw_zip([_stored("x.npy", _npy(X)[:-10]), _stored("y.npy", _npy(Y))]),
         "declares shape .* but holds"),
    Case("npz-not-a-zip", "npz", lambda v: b"PK\x03\x04 not really", "not a readable .npz"),
    Case("npz-good", "npz", lambda v: _npz(x=X, y=Y, class_names=np.array(list("abcd"))), ""),
    Case("image-folder-png-bomb", "image-folder", lambda v: png_bomb(), r"too large, a decompression bomb"),
    Case("name-newline", "name", lambda v: "ok\n", "must start with a letter"),
    Case("name-81-chars", "name", lambda v: "a" * 81, "at most 80 characters"),
    Case("name-dotdot", "name", lambda v: "../escape", "must start with a letter"),
    Case("name-absolute", "name", lambda v: "/etc/passwd", "must start with a letter"),
    Case("name-zoo", "name", lambda v: "digits-cnn", "is a zoo model's"),
]


def run_case(case: Case, victim: Path, dataset, limits=None, payload=None) -> tuple[str, str]:
    """("refused", message) or ("accepted", what) for one case through the code path the app and CLI share."""
    from vizcore import data, zoo

    payload = case.build(victim) if payload is None else payload
    try:
        if case.kind == "model":
            if limits is not None:
                from vizcore import torchscript

                old, torchscript.LIMITS = torchscript.LIMITS, limits
            try:
                e = zoo.import_model(payload, case.name, dataset, case.arch)
            finally:
                if limits is not None:
                    torchscript.LIMITS = old
            return "accepted", e.id
        if case.kind == "npz":
            path, _ = data.import_npz(payload, case.name)
            return "accepted", str(path)
        if case.kind == "image-folder":
            root = victim.parent / "folder"
            for c in ("a", "b"):
                (root / c).mkdir(parents=True, exist_ok=True)
                (root / c / "0.png").write_bytes(payload)
            data.load_dataset(f"image-folder:{root}")
            return "accepted", str(root)
        zoo.check_name(payload)
        return "accepted", payload
    except ValueError as e:  # ModelFileError, DatasetError: the one-line refusals
        return "refused", str(e)


def snapshot(*folders: Path) -> dict[str, tuple[int, int]]:
    """(size, mtime_ns) of every file under ``folders``: to prove nothing was created or changed there."""
    out = {}
    for folder in folders:
        for p in folder.rglob("*"):
            if p.is_file():
                st = p.stat()
                out[str(p)] = (st.st_size, st.st_mtime_ns)
    return out


def make_victim(root: Path) -> Path:
    """A folder of files an attacker would like to read or change."""
    victim = root / "victim"
    victim.mkdir(parents=True, exist_ok=True)
    (victim / "passwd").write_text("root:x:0:0:root:/root:/bin/bash\n" * 4)
    (victim / "notes.txt").write_text("precious\n")
    return victim
