"""coinfer.hw: the hardware model (arena, processors, SoC, cost profiles, traces).

Memory
------
``Arena(tensors, alignment=64)`` plans byte offsets for ``tensors`` =
``[(nbytes, first_use, last_use), ...]`` (inclusive op indices; tensors alive
at one op never overlap) and maps one shared block (``MAP_SHARED``, so a forked
process sees it).  ``arena.view(i, shape, dtype=float32, layout=None)`` is
tensor ``i`` as a numpy array (``layout="image"`` turns an NCHW shape into
``(N, H, CB, W, 4)``); asking for more bytes than planned raises ValueError.
``used_bytes``, ``lower_bound``, ``naive_bytes``; ``close()``.  The planner
alone: ``plan_offsets(tensors, alignment) -> (offsets, total)``.

Processors and tasks
--------------------
``Processor(name, layout, kernels, cores, threads=1)`` is a pool of worker
threads, thread ``i`` pinned to ``cores[i % len(cores)]``, each running its own
queue in submission order.  ``kernels`` is the kernel module it runs
(``proc.kernels``).  Work goes in as tasks; each
call returns a :class:`Task` handle at once:

- ``proc.run(op, fn, *args, rows=(r0, r1) | channels=(c0, c1), after=[tasks], **kw)``
  splits the region into one tile per thread (``tiles=``, ``split=`` to
  choose) and calls ``fn(*args, rows=tile, **kw)`` on each: kernels write
  ``out=`` by region.  Channel tiles of an image processor are cut at
  multiples of 4.  An empty region runs nothing and stands for ``after``.
- ``proc.submit(fn, *args, tiles=[{...}, ...], op=..., after=[...], thread=)``
  is the general form: one call per dict of extra keyword arguments
  (``tiles=None``: one call, on ``thread``, default 0).
- Both take ``kind=`` (default ``"compute"``) and ``nbytes=`` for the trace.

``task.result(timeout)`` returns a list with one value per tile, or raises
:class:`TaskError` (a RuntimeError: "gpu: op 'conv3' failed: ValueError: ...",
chaining the original exception); ``TimeoutError`` if not done in time.
``task.wait(timeout)``, ``task.done()``, ``task.exception()``.  A task with
``after=`` starts once those tasks are done; a failed task fails its
dependents (not run, not recorded); the pool keeps working.  ``after=`` may
name tasks of another processor only for kinds ``sync``, ``transfer`` and
``load``: a compute waiting on the other processor goes through a sync,
which is recorded and costed.  ``close()`` (or ``with``) lets queued work
finish and ends the threads.

The SoC and data sharing
------------------------
``SoC.host(cpu_threads=1, gpu_threads=1, cpu_cores=(0,), gpu_cores=(1,),
arena=None, profile="host")`` builds ``soc.cpu`` (buffer kernels) and
``soc.gpu`` (image kernels; ``gpu_kernels="buffer"`` for a muLayer-like gpu),
sharing one ``soc.trace``.  Every sharing step is a recorded, costed task on a
processor thread (``on=``, default the gpu, as in CoDL where they are queued
on the GPU; ``sync`` names its waiter):

- ``soc.transform(src, to="buffer"|"image", out=..., rows=, channels=, on=, after=)``
- ``soc.map(view, on=, after=)``    -- cache_flush over the view (before the other side reads)
- ``soc.unmap(view, on=, after=)``  -- cache_clean over the view (after writing it)
- ``soc.sync(tasks, on=, timeout=)`` -- ``on`` waits for tasks of another processor;
  past ``timeout`` (default ``soc.sync_timeout``, 30 s) it fails with
  :class:`SyncTimeout` (a TimeoutError), its dependents are not run, and the
  SoC stays usable.
- ``soc.run(on, op, fn, *args, **kw)`` is ``soc[on].run(...)``.

Each thread runs its queue in submission order, so submit in the order the
processor should work: the CPU's input share first, then the GPU's kernel.
One co-executed op, height split at row ``r`` (GPU rows [0, r), CPU rows [r, H);
``hin`` is the CPU's input rows including the halo)::

    t = soc.transform(x_img, to="buffer", out=x_buf, rows=hin, op="conv3", after=[prev_g])
    m = soc.map(x_buf[:, :, hin[0]:hin[1]], op="conv3", after=[t])
    g = soc.gpu.run("conv3", image.conv2d, x_img, w_img, b, out=y_img, rows=(0, r), after=[m])
    s = soc.sync([m], on="cpu", op="conv3")                  # CPU pre-sync
    c = soc.cpu.run("conv3", buffer.conv2d, x_buf, w, b, out=y_buf, rows=(r, H), after=[s])
    s2 = soc.sync([c], on="gpu", op="conv3")                 # GPU waits for the CPU's event
    u = soc.unmap(y_buf[:, :, r:H], op="conv3", after=[s2, g])
    done = soc.transform(y_buf, to="image", out=y_img, rows=(r, H), op="conv3", after=[u])
    done.result(timeout=10)

Time
----
``soc.trace`` (a :class:`Trace`) records every task as a :class:`TaskRecord`:
id, processor, thread, kind (compute / transform / map / unmap / sync /
transfer / load), op, region, bytes, start, end, submitted, deps, and the
modelled cost the worker realised.  ``trace.makespan()`` is the measured time
from the first submission to the last end.  ``trace.replay(profile)``
list-schedules the same graph: per-thread order and deps kept, compute and
transform durations scaled by the profile's per-processor scale, each kind's
modelled cost (constant + per byte) added, measured dispatch gaps and
submission times kept (``gaps=False`` drops them: an ideal runtime).
``trace.replay(p)`` of a run made under profile ``p`` reproduces its
makespan.  ``to_chrome(path, profile=None)`` writes Perfetto JSON (pid per
processor, tid per thread); ``summary(profile=None)`` gives time per kind and
processor and ``sharing_share`` = (transform + map + unmap + sync) / busy.
``dispatch_gaps()`` lists each processor task's measured gap (its start after
it was ready and submitted).  ``trace.clear()`` after a warm-up run.

Native programs (``coinfer.hw.dispatch.Program``): the same calls (transform,
map, unmap, sync, and kernel calls bound as ``coinfer.kernels.entry``
NativeCalls) built once, then run by one worker per processor in C
(``csrc/dispatch.c``) with the interpreter lock released; the tasks are
recorded in the trace after the run, as the Python path records them.

Profiles: ``profiles()``, ``get_profile(name)`` -> :class:`CostProfile`:
``host`` (nothing added), ``snapdragon855`` (CoDL's measured sharing costs,
CPU and GPU about equally fast), ``raspberry_pi``, ``desktop_edge``;
``profile.calibrated(host_gflops)``, ``with_gflops(name=...)``,
``with_costs(kind=Cost(constant, per_byte))``.  ``SoC(..., profile=p)`` makes
the workers wait out ``p``'s modelled costs live.

The network link
----------------
``Link(bandwidth, rtt_s)`` (or ``Link(trace=BandwidthTrace(...))``): a transfer
of n bytes takes RTT/2 + 8n/bandwidth (integrated over the trace);
``link.send(trace, nbytes, after=, at=)`` records it as a ``transfer`` task
on the ``"link"`` lane.  ``BandwidthTrace.load(path)``, ``.synthetic(...)``,
``coinfer.hw.link.shipped()`` / ``load_shipped(name)`` for the six shipped
traces; ``edge_profile(device, edge)`` scales processors ``"device"`` and
``"edge"`` by two profiles.  See :mod:`coinfer.hw.link`.

Submit work ahead with ``after=`` rather than blocking on ``result()``
between ops, so the trace holds the real dependencies and replay can re-time
them.
"""
from coinfer.kernels import LAYOUTS

from . import memory
from .arena import Arena, lower_bound, naive_bytes, plan_offsets
from .link import BandwidthTrace, Link
from .processor import Processor, split_range
from .profile import HOST_GFLOPS, KINDS, SHARING_KINDS, Cost, CostProfile, get_profile, profiles
from .soc import SoC
from .task import SyncTimeout, Task, TaskError
from .trace import TaskRecord, Trace

__all__ = [
    "memory", "Arena", "plan_offsets", "lower_bound", "naive_bytes",
    "Processor", "Task", "TaskError", "SyncTimeout", "LAYOUTS", "split_range",
    "Cost", "CostProfile", "profiles", "get_profile", "KINDS", "SHARING_KINDS", "HOST_GFLOPS",
    "SoC", "Trace", "TaskRecord", "Link", "BandwidthTrace",
]
