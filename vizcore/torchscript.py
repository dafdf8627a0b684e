"""TorchScript uploads are programs; they are confined in three steps before the server ever loads one.

1. :func:`inspect_archive` reads the zip without loading it: data records must be stored and no larger than the
   upload, code may be deflated only within a ratio, and the serialized ``code/`` sources may not define
   ``__setstate__`` (which ``torch.jit.load`` itself would run), loop, print or call any op outside
   :data:`ALLOWED_OPS`.
2. :func:`check_in_child` loads the archive in a fresh Python process (``python -m vizcore.torchscript``) under
   ``RLIMIT_AS``, ``RLIMIT_CPU``, ``RLIMIT_FSIZE=0``, ``RLIMIT_NOFILE`` and a wall-clock timeout, walks every
   method's inlined graph of every submodule (and its hooks) with :func:`graph_message`, then runs the fit check:
   batches of 1 and of several images, output exactly ``(N, classes)``, finite, each sample's result independent
   of the batch, and a batch as large as the app's evaluation batch within the memory limit.
3. Only then is the archive loaded in the server (:func:`load_checked`, which repeats steps 1 and the graph walk
   on every later load from the workspace).

The allowlist admits pure tensor operations only. Loops (``prim::Loop``) and tensor-to-number conversions
(``aten::Int`` of a tensor's *value*; of a traced size it is fine) are refused, so a model's control flow,
memory and time depend on the input's shape alone: what the child measured at the largest batch holds for
every input of that batch size.
"""

from __future__ import annotations

import io
import json
import os
import re
import resource
import signal
import subprocess
import sys
import tempfile
import warnings
from dataclasses import asdict, dataclass

import torch

from vizcore.core.archive import MAX_UPLOAD, ZipLimits, zip_records
from vizcore.zoo import ModelFileError, fit_message


@dataclass(frozen=True)
class SandboxLimits:
    """What the child process may use: address space beyond the interpreter's own, CPU and wall seconds."""

    memory_bytes: int = 2 * 2**30
    cpu_seconds: int = 60
    wall_seconds: float = 120.0
    probe_batch: int = 256  # vizcore.metrics.predict_logits evaluates in batches of 256


LIMITS = SandboxLimits()
CODE_BYTES = 16 * 2**20  # all serialized sources together, inflated

_POINTWISE = """abs acos asin atan atan2 ceil clamp clamp_max clamp_min clip cos cosh div erf erfc exp expm1 floor
    floor_divide fmod frac hardshrink hardsigmoid hardswish hardtanh leaky_relu lerp log log10 log1p log2 logit mish
    mul neg pow reciprocal relu relu6 remainder round rsqrt rrelu selu celu elu gelu glu sigmoid sign silu sin sinh
    softplus softshrink sqrt square sub add tan tanh threshold trunc where maximum minimum eq ne lt le gt ge
    logical_and logical_or logical_not logical_xor bitwise_not masked_fill prelu nan_to_num isnan isfinite rsub true_divide""".split()
_REDUCE = """sum mean std var norm amax amin max min argmax argmin prod softmax log_softmax logsumexp cumsum all any
    median mode sort topk kthvalue""".split()
_NN = """conv1d conv2d conv3d _convolution convolution conv_transpose1d conv_transpose2d linear addmm matmul mm bmm mv
    dot einsum baddbmm batch_norm layer_norm group_norm instance_norm _batch_norm_impl_index native_batch_norm
    native_layer_norm dropout feature_dropout alpha_dropout max_pool1d max_pool2d max_pool3d max_pool2d_with_indices
    avg_pool1d avg_pool2d avg_pool3d adaptive_avg_pool1d adaptive_avg_pool2d adaptive_max_pool2d lp_pool2d
    upsample_nearest2d upsample_bilinear2d upsample_bicubic2d interpolate pad constant_pad_nd reflection_pad2d
    replication_pad2d pixel_shuffle pixel_unshuffle channel_shuffle normalize cosine_similarity pairwise_distance
    local_response_norm""".split()
_SHAPE = """view reshape flatten unflatten squeeze unsqueeze permute transpose t contiguous cat concat stack split
    split_with_sizes chunk unbind select slice narrow index_select gather expand expand_as repeat tile flip roll
    size dim numel len to type_as float double half detach clone __getitem__ view_as reshape_as movedim diagonal
    zeros zeros_like ones ones_like full full_like empty empty_like new_zeros new_ones new_full new_empty arange
    tensor scalar_tensor eye masked_select index triu tril one_hot""".split()
_SCALAR = """Int Float Bool ScalarImplicit IntImplicit FloatImplicit item floordiv __and__ __or__ __not__ __is__
    __isnot__ __contains__ format str list append extend __range_length __derive_index warn_unused""".split()
_PRIM = """Constant GetAttr ListConstruct ListUnpack TupleConstruct TupleUnpack TupleIndex DictConstruct If
    RaiseException Uninitialized unchecked_cast NumToTensor device dtype layout min max abs isinstance
    is_cuda data requires_grad shape TupleSlice""".split()
ALLOWED_OPS = frozenset(
    [f"aten::{o}" for o in _POINTWISE + _REDUCE + _NN + _SHAPE + _SCALAR] + [f"prim::{o}" for o in _PRIM])
# In-place versions (``relu_``) are allowed on intermediate values, never on the model's own tensors.
INPLACE_OK = frozenset(f"aten::{o}_" for o in _POINTWISE + "fill zero copy clamp dropout feature_dropout alpha_dropout".split())
VIEWS = frozenset(f"aten::{o}" for o in """view reshape flatten unflatten squeeze unsqueeze permute transpose t
    select slice narrow expand expand_as view_as reshape_as movedim diagonal split chunk unbind __getitem__
    contiguous detach to""".split())
TO_NUMBER = frozenset(f"aten::{o}" for o in "Int Float Bool ScalarImplicit IntImplicit FloatImplicit item".split())

_WHY = {
    "prim::Loop": "a loop, whose length can depend on the input (trace the model to unroll fixed loops)",
    "prim::Print": "printing", "aten::warn": "printing a warning", "aten::from_file": "reading or writing a file",
    "aten::save": "writing a file", "aten::load": "reading a file", "prim::SetAttr": "changing the model's own state",
    "prim::CallMethod": "a call that could not be inlined", "prim::CallFunction": "a call that could not be inlined",
    "prim::fork": "starting a thread", "aten::wait": "waiting on a thread", "prim::PythonOp": "calling Python",
}


def _refusal(op: str) -> str:
    why = _WHY.get(op) or ("RPC / distributed communication" if ("rpc" in op or "dist" in op) else
                           "an operation outside the allowlist of pure tensor operations")
    return f"refused: the TorchScript model uses {op} ({why})"


# ------------------------------------------------------------------------------------- 1. the archive, unloaded

_CALL = re.compile(r"\b(torch|ops\.(\w+))\.(\w+)\s*\(")
_KEYWORD = re.compile(r"\b(for|while)\b[^\n]*:\s*$|\bprint\s*\(|__setstate__|__getstate__", re.M)


def inspect_archive(data: bytes) -> None:
    """Refuse a TorchScript archive from its zip directory and serialized sources, before any loading."""
    code = lambda n: "/code/" in n and n.endswith((".py", ".debug_pkl"))  # noqa: E731 (torch deflates these)
    limits = ZipLimits(member_bytes=max(len(data), 1), total_bytes=len(data) + CODE_BYTES, compressed=code)
    zf, infos = zip_records(data, limits, ModelFileError)
    sources = [i for i in infos if "/code/" in i.filename and i.filename.endswith(".py")]
    if not sources:
        raise ModelFileError("not a TorchScript archive (make one with torch.jit.script(model) and torch.jit.save)")
    if sum(i.file_size for i in infos if code(i.filename)) > CODE_BYTES:
        raise ModelFileError(f"too large: the archive's code inflates to more than {CODE_BYTES // 2**20} MiB")
    for info in sources:
        text = zf.read(info).decode("utf-8", errors="replace")
        if m := _KEYWORD.search(text):
            word = m.group(0).strip()
            op = ("prim::Loop" if word.startswith(("for", "while")) else "prim::Print" if word.startswith("print")
                  else word)
            if op.startswith("__"):
                raise ModelFileError("refused: the TorchScript model defines __setstate__/__getstate__, code that "
                                     "torch.jit.load would run while loading")
            raise ModelFileError(_refusal(op))
        for m in _CALL.finditer(text):
            ns = "aten" if m.group(1) == "torch" else m.group(2)
            op = f"{ns}::{m.group(3)}"
            if op not in ALLOWED_OPS and op not in INPLACE_OK:
                raise ModelFileError(_refusal(op))


# ------------------------------------------------------------------------------------- 2. the graphs, loaded


def _graphs(module: torch.jit.ScriptModule):
    """(name, inlined graph) of every method and hook of every submodule."""
    for sub_name, sub in module.named_modules():
        fns = [(n, sub._c._get_method(n)) for n in sub._c._method_names()]
        fns += [(f"hook {i}", h) for i, h in enumerate(sub._c._get_forward_hooks() + sub._c._get_forward_pre_hooks())]
        for name, fn in fns:
            g = fn.graph.copy()
            torch._C._jit_pass_inline(g)
            yield f"{sub_name or 'model'}.{name}", g


def _nodes(block):
    for node in block.nodes():
        yield node
        for b in node.blocks():
            yield from _nodes(b)


def _is_attribute(value) -> bool:
    """Whether ``value`` is (a view of) one of the model's own tensors."""
    node = value.node()
    while node.kind() in VIEWS:
        node = node.inputsAt(0).node()
    return node.kind() == "prim::GetAttr"


def graph_message(module: torch.jit.ScriptModule) -> str | None:
    """None if every graph of ``module`` holds only allowed operations, else a refusal naming the first other."""
    for where, g in _graphs(module):
        for node in _nodes(g):
            op = node.kind()
            if op in INPLACE_OK:
                if _is_attribute(node.inputsAt(0)):
                    return f"refused: {where} changes the model's own weights in place ({op})"
            elif op not in ALLOWED_OPS:
                return _refusal(op) + f" in {where}"
            elif op in TO_NUMBER and node.inputsAt(0).node().kind() != "prim::NumToTensor" \
                    and node.inputsAt(0).type().kind() == "TensorType":
                return (f"refused: {where} turns tensor values into numbers ({op}), so its control flow or memory "
                        "could depend on the image")
    return None


def _load(data: bytes) -> torch.jit.ScriptModule:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch.jit.load's deprecation notice
        try:
            return torch.jit.load(io.BytesIO(data), map_location="cpu")
        except Exception as e:  # TorchScript raises RuntimeError and friends on a bad archive
            raise ModelFileError(f"could not load TorchScript: {str(e).splitlines()[0][:300]}") from e


def load_checked(data: bytes) -> torch.jit.ScriptModule:
    """Load a TorchScript archive that passes :func:`inspect_archive` and :func:`graph_message`, in eval mode."""
    inspect_archive(data)
    model = _load(data)
    if msg := graph_message(model):
        raise ModelFileError(msg)
    return model.eval()


# ------------------------------------------------------------------------------------- the child process


def _child() -> None:
    """``python -m vizcore.torchscript``: read ``{"shape", "classes", "limits"}`` and the archive from stdin,
    confine this process, check the model, print one JSON line."""
    header = json.loads(sys.stdin.buffer.readline())
    data = sys.stdin.buffer.read()
    limits = SandboxLimits(**header["limits"])
    torch.set_num_threads(1)
    vm = next(int(line.split()[1]) * 1024 for line in open("/proc/self/status") if line.startswith("VmSize:"))
    cpu = int(sum(resource.getrusage(resource.RUSAGE_SELF)[:2])) + 1
    resource.setrlimit(resource.RLIMIT_AS, (vm + limits.memory_bytes, vm + limits.memory_bytes))
    resource.setrlimit(resource.RLIMIT_CPU, (cpu + limits.cpu_seconds, cpu + limits.cpu_seconds + 1))
    resource.setrlimit(resource.RLIMIT_FSIZE, (0, 0))
    resource.setrlimit(resource.RLIMIT_NOFILE, (3, 3))  # stdin, stdout, stderr: no new file or socket
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    try:
        model = load_checked(data)
        msg = fit_message(model, tuple(header["shape"]), header["classes"], limits.probe_batch)
    except ModelFileError as e:
        msg = str(e)
    except (MemoryError, RuntimeError) as e:
        text = str(e)
        msg = (f"too large: the model needs more than {limits.memory_bytes / 2**30:.2g} GiB of memory"
               if isinstance(e, MemoryError) or "alloc" in text.lower() or "memory" in text.lower()
               else f"the model fails when run ({text.splitlines()[0][:200]})")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    sys.stdout.write(json.dumps({"message": msg, "peak_bytes": peak}) + "\n")
    sys.stdout.flush()


def check_in_child(data: bytes, input_shape: tuple[int, ...], num_classes: int,
                   limits: SandboxLimits | None = None) -> dict:
    """Run the graph walk and the fit check in a confined child process; :class:`ModelFileError` if it refuses,
    crashes, or passes a limit; otherwise its report (``peak_bytes``: the child's peak resident memory)."""
    limits = limits or LIMITS
    header = {"shape": list(input_shape), "classes": int(num_classes), "limits": asdict(limits)}
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env = {k: v for k, v in os.environ.items() if k in ("PATH", "LANG", "LC_ALL", "HOME")}
    env.update(PYTHONPATH=root, OMP_NUM_THREADS="1", PYTHONDONTWRITEBYTECODE="1")
    with tempfile.TemporaryDirectory(prefix="vizcore-sandbox-") as cwd:
        try:
            proc = subprocess.run([sys.executable, "-m", "vizcore.torchscript"], input=json.dumps(header).encode()
                                  + b"\n" + data, capture_output=True, timeout=limits.wall_seconds, cwd=cwd, env=env,
                                  start_new_session=True)
        except subprocess.TimeoutExpired as e:
            raise ModelFileError(f"refused: the model did not finish the fit check within {limits.wall_seconds:g} s") from e
    if proc.returncode in (-signal.SIGXCPU, -signal.SIGKILL):
        raise ModelFileError(f"refused: the model used more than {limits.cpu_seconds} s of CPU in the fit check")
    lines = proc.stdout.decode(errors="replace").strip().splitlines()
    try:
        report = json.loads(lines[-1])
    except (IndexError, ValueError):
        if proc.returncode < 0:
            raise ModelFileError(f"refused: the model crashed the fit check ({signal.Signals(-proc.returncode).name})") from None
        tail = proc.stderr.decode(errors="replace").strip().splitlines()[-1:] or ["no output"]
        raise ModelFileError(f"refused: the fit check failed ({tail[0][:200]})") from None
    if report["message"]:
        raise ModelFileError(report["message"])
    return report


def check_upload(data: bytes, input_shape: tuple[int, ...], num_classes: int) -> torch.jit.ScriptModule:
    """A TorchScript upload that passed every check, loaded in this process; :class:`ModelFileError` otherwise."""
    if len(data) > MAX_UPLOAD:
        raise ModelFileError(f"too large: {len(data) / 2**20:.0f} MiB (at most {MAX_UPLOAD // 2**20} MiB)")
    inspect_archive(data)
    check_in_child(data, input_shape, num_classes)
    return load_checked(data)


if __name__ == "__main__":
    _child()
