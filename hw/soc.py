"""The SoC: a cpu and a gpu Processor, an arena, a cost profile and one Trace.

Data sharing between the processors is explicit.  ``transform``, ``map``,
``unmap`` and ``sync`` each run as a task on a processor thread, are recorded
in the trace with their bytes, and pay the profile's modelled cost (the worker
waits it out) on top of their real cost.
"""
from __future__ import annotations

import numpy as np

from coinfer.kernels import args as _args
from coinfer.kernels import buffer as buffer_kernels
from coinfer.kernels import image as image_kernels
from coinfer.kernels import layout

from . import memory
from .processor import Processor
from .profile import get_profile
from .task import Task
from .trace import Trace

__all__ = ["SoC"]


def _span_bytes(a: np.ndarray) -> int:
    """Bytes from ``a``'s first element to one past its last: what a cache walk covers."""
    if a.size == 0:
        return 0
    if a.flags.c_contiguous:
        return a.nbytes
    return a.itemsize + sum((n - 1) * abs(s) for n, s in zip(a.shape, a.strides))


class SoC:
    """A cpu, a gpu, an optional :class:`~coinfer.hw.arena.Arena`, a cost profile, one trace.

    ``SoC(cpu, gpu, arena=None, profile="host")`` takes two processors and
    points both at one :class:`Trace` (the cpu's) and at ``profile``.
    ``sync_timeout`` is the default seconds a sync waits before it fails.
    """

    def __init__(self, cpu: Processor, gpu: Processor, arena=None, profile="host", *,
                 sync_timeout: float = 30.0):
        if not isinstance(cpu, Processor) or not isinstance(gpu, Processor):
            raise TypeError("SoC: cpu and gpu must be Processors")
        if cpu.name == gpu.name:
            raise ValueError(f"SoC: cpu and gpu need distinct names, both are {cpu.name!r}")
        self.cpu, self.gpu = cpu, gpu
        self.arena = arena
        self.trace: Trace = cpu.trace
        gpu.trace = self.trace
        self.profile = profile
        self.sync_timeout = float(sync_timeout)

    @classmethod
    def host(cls, cpu_threads: int = 1, gpu_threads: int = 1, cpu_cores=(0,), gpu_cores=(1,), *,
             arena=None, profile="host", gpu_kernels: str = "image", sync_timeout: float = 30.0) -> "SoC":
        """This machine as an SoC: a ``"cpu"`` processor with the buffer kernels and a
        ``"gpu"`` processor with the ``gpu_kernels`` set (``"image"``, or
        ``"buffer"`` for a muLayer-like gpu).  Cores this process may not use are
        replaced by ones it may."""
        if gpu_kernels not in ("image", "buffer"):
            raise ValueError(f"SoC.host: gpu_kernels must be 'image' or 'buffer', got {gpu_kernels!r}")
        trace = Trace()
        cpu = Processor("cpu", "buffer", buffer_kernels, cpu_cores, cpu_threads, trace=trace)
        try:
            kset = image_kernels if gpu_kernels == "image" else buffer_kernels
            gpu = Processor("gpu", gpu_kernels, kset, gpu_cores, gpu_threads, trace=trace)
        except BaseException:
            cpu.close()
            raise
        return cls(cpu, gpu, arena, profile, sync_timeout=sync_timeout)

    # -- configuration ------------------------------------------------------
    @property
    def profile(self):
        return self._profile

    @profile.setter
    def profile(self, profile) -> None:
        self._profile = get_profile(profile)
        self.cpu.profile = self._profile
        self.gpu.profile = self._profile

    @property
    def processors(self) -> dict:
        return {self.cpu.name: self.cpu, self.gpu.name: self.gpu}

    def __getitem__(self, name) -> Processor:
        if isinstance(name, Processor) and name in (self.cpu, self.gpu):
            return name
        try:
            return self.processors[name]
        except (KeyError, TypeError):
            raise ValueError(f"SoC: no processor {name!r}; processors are {list(self.processors)}") from None

    # -- work ---------------------------------------------------------------
    def run(self, on, op: str, fn, *args, **kwargs) -> Task:
        """``self[on].run(op, fn, *args, **kwargs)``: compute on a region, in tiles."""
        return self[on].run(op, fn, *args, **kwargs)

    def transform(self, src: np.ndarray, *, to: str, out: np.ndarray, rows=None, channels=None,
                  op: str = "", on="gpu", after=(), thread: int | None = None) -> Task:
        """Layout transform of a region (C, csrc/layout.c), recorded as ``"transform"``.

        ``to="buffer"``: ``src`` is an image ``(N, H, CB, W, 4)``, ``out`` the
        NCHW buffer; ``to="image"``: the reverse.  ``rows`` / ``channels`` pick
        the region (cells outside it in ``out`` are untouched).  Bytes are the
        region's float32 bytes, N * rows * W * channels * 4.
        """
        fn, _, call, region, nbytes = transform_args(src, to, out, rows, channels, op)
        return self[on].submit(fn, *call, out=out, tiles=[region], op=op, after=after, kind="transform",
                               nbytes=nbytes, thread=thread)

    def map(self, region: np.ndarray, *, op: str = "", on="gpu", after=(), thread: int | None = None) -> Task:
        """Hand ``region`` (an array view) to the other processor's reads: write back and
        drop its cache lines (``cache_flush``), recorded as ``"map"`` with its bytes."""
        return self._cache("map", memory.cache_flush, region, op, on, after, thread)

    def unmap(self, region: np.ndarray, *, op: str = "", on="gpu", after=(), thread: int | None = None) -> Task:
        """Return ``region`` after writing it: write back its dirty cache lines
        (``cache_clean``), recorded as ``"unmap"`` with its bytes."""
        return self._cache("unmap", memory.cache_clean, region, op, on, after, thread)

    def _cache(self, kind, fn, region, op, on, after, thread) -> Task:
        if not isinstance(region, np.ndarray):
            raise TypeError(f"{kind} {op!r}: region must be a numpy.ndarray view, got {type(region).__name__}")
        if any(s < 0 for s in region.strides):
            raise ValueError(f"{kind} {op!r}: region must not have negative strides")
        return self[on].submit(fn, region, op=op, after=after, kind=kind, nbytes=_span_bytes(region), thread=thread)

    def sync(self, events, *, on, op: str = "", timeout: float | None = None, thread: int | None = None) -> Task:
        """Make processor ``on`` wait for ``events`` (Tasks, typically on the other
        processor), recorded as ``"sync"``.  Work submitted to ``on`` after it with
        ``after=[sync_task]`` runs once the events are done.  If they are not done
        within ``timeout`` (default ``sync_timeout``) seconds, the sync fails with
        :class:`~coinfer.hw.processor.SyncTimeout` (a TimeoutError) and its
        dependents are not run; the SoC stays usable."""
        if isinstance(events, Task):
            events = (events,)
        events = tuple(events)
        if not events:
            raise ValueError(f"sync {op!r}: nothing to wait for")
        timeout = self.sync_timeout if timeout is None else timeout
        return self[on].submit(None, op=op, after=events, kind="sync", timeout=timeout, thread=thread)

    # -- lifetime -----------------------------------------------------------
    def close(self) -> None:
        """End both processors' threads (queued work finishes first).  The arena is
        its creator's to close."""
        self.cpu.close()
        self.gpu.close()

    def __enter__(self) -> "SoC":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"SoC(cpu={self.cpu!r}, gpu={self.gpu!r}, profile={self.profile.name!r})"


def transform_args(src, to: str, out, rows, channels, op: str) -> tuple:
    """The checks of :meth:`SoC.transform` -> (the layout function, its native binder, their leading
    arguments, the region ``{"rows": .., "channels": ..}``, the region's bytes)."""
    name = f"transform {op!r}"
    if to == "buffer":
        img = _args.array(name, "src", src, 5)
        buf = _args.out_array(name, out, _shape_of(name, out, 4))
        fn, bind, call = layout.to_buffer, layout.bind_to_buffer, (img, buf.shape[1])
    elif to == "image":
        buf = _args.array(name, "src", src, 4)
        img = _args.out_array(name, out, layout.image_shape(buf.shape))
        fn, bind, call = layout.to_image, layout.bind_to_image, (buf,)
    else:
        raise ValueError(f"{name}: to must be 'buffer' or 'image', got {to!r}")
    n, c, h, w = buf.shape
    if img.shape != layout.image_shape(buf.shape):
        raise ValueError(f"{name}: image shape {img.shape} does not match buffer shape {buf.shape}")
    r = _args.region(name, "rows", rows, h)
    ch = _args.region(name, "channels", channels, c)
    return fn, bind, call, {"rows": r, "channels": ch}, 4 * n * (r[1] - r[0]) * w * (ch[1] - ch[0])


def _shape_of(name: str, a, ndim: int) -> tuple:
    if not isinstance(a, np.ndarray):
        raise TypeError(f"{name}: out must be a numpy.ndarray, got {type(a).__name__}")
    if a.ndim != ndim:
        raise ValueError(f"{name}: out must be {ndim}-D, got shape {a.shape}")
    return a.shape
