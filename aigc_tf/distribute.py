"""Training on several machines: ``TF_CONFIG``, the multi-worker strategy, Keras ``fit``
under it, agreement with the chief, the local launcher, and tf.data service input.

``train.strategy: multi_worker`` uses TensorFlow's own
``tf.distribute.MultiWorkerMirroredStrategy``. Every worker runs the same
``aigc-tf train`` command with its own ``TF_CONFIG`` (a scheduler sets it, or
``aigc-tf train CONFIG --workers N`` does on one machine); worker 0 (or the
``chief`` task) is the chief and the only process that writes into the run
directory (:class:`aigc_tf.run_dir.RunWriter`).

Keras 3.15.1's ``fit`` does not run under this strategy (keras-team/keras#20585):
its symbolic build reduces a batch dict with ``strategy.reduce``, and every step
reduces the rank-0 metric values with ``strategy.reduce("MEAN", v, axis=0)``.
:func:`keras_fit` makes the same ``fit`` work for our models with two
instance-level adjustments for the duration of the call (no Keras code is
changed): the step functions return their logs with shape ``(1,)`` (the reduction
then averages over replicas and gives the scalars Keras expects), and the
symbolic build is skipped (our models and optimizers are built before ``fit``,
so it has nothing to build). Callbacks, history, validation and the run
directory are Keras' and ours, as on one device.

This module imports no TensorFlow at module level.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import random
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path

from aigc_tf.errors import ConfigError, UserError

# Exit status of a worker that stopped because another worker of its cluster was lost,
# and of one that saved a checkpoint after SIGTERM (preemption): 128 + SIGTERM, as a shell reports it.
EXIT_WORKER_LOST = 4
EXIT_PREEMPTED = 143
TASK_TYPES = ("chief", "worker")

_strategy = None


class Preempted(Exception):
    """Training stopped after SIGTERM, with a checkpoint of ``epochs_done`` epochs and ``steps_done`` steps."""

    def __init__(self, epochs_done: int, steps_done: int):
        super().__init__(f"preempted (SIGTERM): saved a checkpoint after {epochs_done} epochs and {steps_done} "
                         "steps; rerun the same command to resume from it")
        self.epochs_done, self.steps_done = epochs_done, steps_done


class WorkerLost(Exception):
    """Another worker of a multi-worker cluster stopped (killed, crashed, unreachable)."""


# ---------------------------------------------------------------- TF_CONFIG
def tf_config(ports: Sequence[int], index: int, host: str = "127.0.0.1") -> dict:
    """``TF_CONFIG`` of worker ``index`` in a cluster of one worker per port on ``host``."""
    return {"cluster": {"worker": [f"{host}:{p}" for p in ports]}, "task": {"type": "worker", "index": index}}


def cluster_from_env(env: dict | None = None) -> dict:
    """The parsed ``TF_CONFIG`` of this process, checked; a clear :class:`UserError` if it
    is missing or cannot describe a multi-worker cluster."""
    raw = (os.environ if env is None else env).get("TF_CONFIG", "")
    fix = ("run `aigc-tf train CONFIG --workers N` to start N workers on this machine, or set TF_CONFIG "
           "on every worker as the README's Distribution section shows")
    if not raw.strip():
        raise UserError(f"train.strategy=multi_worker needs a cluster and TF_CONFIG is not set; {fix}")
    try:
        config = json.loads(raw)
    except ValueError:
        raise UserError(f"TF_CONFIG is not valid JSON ({raw[:60]!r}); {fix}") from None
    cluster = config.get("cluster") if isinstance(config, dict) else None
    task = config.get("task") if isinstance(config, dict) else None
    if not isinstance(cluster, dict) or not isinstance(task, dict):
        raise UserError(f"TF_CONFIG needs a 'cluster' and a 'task' mapping, got {raw[:80]!r}; {fix}")
    for job, addresses in cluster.items():
        if job not in TASK_TYPES or not isinstance(addresses, list) or not addresses \
                or not all(isinstance(a, str) and ":" in a for a in addresses):
            raise UserError(f"TF_CONFIG cluster.{job} must be a list of HOST:PORT strings of a "
                            f"'{TASK_TYPES[0]}' or '{TASK_TYPES[1]}' job, got {addresses!r}")
    if len(cluster.get("chief", [])) > 1:
        raise UserError("TF_CONFIG: a cluster has at most one chief")
    kind, index = task.get("type"), task.get("index", 0)
    if kind not in cluster or not isinstance(index, int) or not 0 <= index < len(cluster[kind]):
        raise UserError(f"TF_CONFIG task {task!r} is not one of the cluster's tasks "
                        f"({', '.join(f'{j}: {len(a)}' for j, a in cluster.items())})")
    return config


def num_workers(config: dict) -> int:
    return sum(len(a) for a in config["cluster"].values())


# ----------------------------------------------------------------- strategy
def multi_worker_strategy():
    """The process's ``MultiWorkerMirroredStrategy`` (created once, from ``TF_CONFIG``).

    TensorFlow configures collectives when the strategy is created, which must
    happen before it runs anything else: the CLI calls this first thing; from
    Python, call it at the top of the worker's program.
    """
    global _strategy
    if _strategy is None:
        cluster_from_env()
        import tensorflow as tf

        try:
            _strategy = tf.distribute.MultiWorkerMirroredStrategy()
        except RuntimeError as exc:
            if "startup" not in str(exc):
                raise
            raise UserError(
                "train.strategy=multi_worker: TensorFlow ran before the strategy was created; call "
                "aigc_tf.distribute.multi_worker_strategy() at the start of the worker's program (the CLI does)"
            ) from None
    return _strategy


def is_multi_worker(strategy) -> bool:
    import tensorflow as tf

    return isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy) and strategy.extended._num_workers > 1


def _rank1(step):
    """``step`` whose rank-0 outputs are returned with shape ``(1,)``."""
    import tensorflow as tf

    def shaped(data):
        return tf.nest.map_structure(lambda v: tf.reshape(v, [1]) if v.shape.rank == 0 else v, step(data))

    return shaped


@contextlib.contextmanager
def keras_fit(model, strategy):
    """Make ``model.fit`` / ``model.evaluate`` run under a multi-worker ``strategy`` inside the block.

    The adjustments (see the module docstring) are set on the instance and
    removed on exit; on one worker, or under any other strategy, nothing changes.
    """
    if not is_multi_worker(strategy):
        yield model
        return
    if not model.built or any(getattr(o, "built", True) is False for o in optimizers(model)):
        raise RuntimeError("keras_fit needs a built model with built optimizers (skipping the symbolic build)")
    model.train_step = _rank1(model.train_step)
    model.test_step = _rank1(model.test_step)
    model._maybe_symbolic_build = lambda *args, **kwargs: None
    model.train_function = model.test_function = None
    try:
        yield model
    finally:
        for name in ("train_step", "test_step", "_maybe_symbolic_build"):
            model.__dict__.pop(name, None)
        model.train_function = model.test_function = None


def optimizers(model) -> list:
    """Every Keras optimizer the model holds (``optimizer``; a GAN's two), each once."""
    import keras

    found = []
    for value in [getattr(model, "optimizer", None), *vars(model).values()]:
        if isinstance(value, keras.optimizers.Optimizer) and all(value is not f for f in found):
            found.append(value)
    return found


def model_state(model) -> list:
    """The TensorFlow variables a worker must share with the chief: the model's weights,
    its seed generators' states and every optimizer's variables (mirrored ones only:
    metric states are per-replica sums that ``fit`` resets)."""
    import tensorflow as tf

    seen, out = set(), []
    keras_vars = list(model.variables)
    for opt in optimizers(model):
        keras_vars += list(opt.variables)
    for v in keras_vars:
        tv = getattr(v, "value", v)
        if id(tv) in seen or tv.synchronization == tf.VariableSynchronization.ON_READ:
            continue
        seen.add(id(tv))
        out.append(tv)
    return out


def copy_state(source, target, where) -> None:
    """Assign ``source``'s weights, seed and optimizer states (a model loaded from the checkpoint
    ``where``) to ``target``, a model of the same config built under the strategy."""
    src, dst = model_state(source), model_state(target)
    shapes = [(tuple(v.shape), v.dtype) for v in src]
    if shapes != [(tuple(v.shape), v.dtype) for v in dst]:
        raise UserError(f"{where} does not hold the model this config builds ({len(src)} variables against "
                        f"{len(dst)}, or other shapes); pass --run-dir NEW")
    for s, d in zip(src, dst, strict=True):
        d.assign(s.numpy())


def _from_chief(strategy, tensors: list):
    """All-reduce that gives every worker the chief's ``tensors``: the others contribute zeros."""
    import tensorflow as tf

    chief = 1 if strategy.extended.should_checkpoint else 0

    def replica_fn():
        ctx = tf.distribute.get_replica_context()
        first = tf.cast(tf.equal(ctx.replica_id_in_sync_group, 0), tf.int32) * chief
        out = [None] * len(tensors)
        # One all-reduce per dtype (a list is packed into one buffer, which needs one dtype).
        for dtype in {t.dtype for t in tensors}:
            index = [i for i, t in enumerate(tensors) if t.dtype == dtype]
            summed = ctx.all_reduce(tf.distribute.ReduceOp.SUM, [tensors[i] * tf.cast(first, dtype) for i in index])
            for i, value in zip(index, summed, strict=True):
                out[i] = value
        return out

    results = strategy.run(replica_fn)
    return [strategy.experimental_local_results(r)[0] for r in results]


def agree(strategy, numbers: Sequence[int]) -> list[int]:
    """The chief's ``numbers`` (e.g. the epochs and steps its run directory holds), on every worker."""
    import tensorflow as tf

    numbers = tf.constant(list(numbers), tf.int64)
    values = tf.function(lambda: _from_chief(strategy, [numbers])[0], autograph=False)()
    return [int(v) for v in values.numpy()]


def barrier(strategy) -> None:
    """Wait until every worker gets here (e.g. the chief has written the final model)."""
    agree(strategy, [0])


def broadcast_from_chief(strategy, model) -> int:
    """Give every worker the chief's weights, optimizer states and seed states; returns how many variables.

    Needed when the chief resumed from a checkpoint the workers cannot read
    (each machine has its own disk), and harmless otherwise.
    """
    import tensorflow as tf

    variables = model_state(model)

    @tf.function(autograph=False)
    def sync():
        values = _from_chief(strategy, [tf.identity(v) for v in variables])
        for v, value in zip(variables, values, strict=True):
            v.assign(value)

    sync()
    return len(variables)


class AnyWorker:
    """``flag`` of any worker: an all-reduce (sum) of each worker's local flag, so all agree."""

    def __init__(self, strategy):
        import tensorflow as tf

        self.strategy = strategy

        @tf.function(autograph=False)
        def reduce(flag):
            per_replica = strategy.run(lambda: tf.identity(flag))
            return strategy.reduce(tf.distribute.ReduceOp.SUM, per_replica, axis=None)

        self._reduce = reduce

    def __call__(self, flag: bool) -> bool:
        import tensorflow as tf

        return int(self._reduce(tf.constant(1 if flag else 0, tf.int32)).numpy()) > 0


def lost_worker_error(exc: BaseException) -> bool:
    """Whether a TensorFlow error means a peer of the cluster went away."""
    import tensorflow as tf

    if isinstance(exc, (tf.errors.UnavailableError, tf.errors.AbortedError, tf.errors.CancelledError,
                        tf.errors.DeadlineExceededError)):
        return True
    text = str(exc)
    return isinstance(exc, tf.errors.OpError) and any(
        s in text for s in ("Collective ops is aborted", "heartbeat", "unhealthy", "Connection reset", "Socket closed",
                            "failed to connect"))


# ------------------------------------------------------------ tf.data service
def service_address(value: str) -> tuple[str, str, int]:
    """``"grpc://host:port"`` or ``"host:port"`` -> ``(address, host, port)``; ConfigError if malformed."""
    text = value.strip()
    rest = text.split("://", 1)[1] if "://" in text else text
    host, _, port = rest.rpartition(":")
    if "://" in text and not text.startswith("grpc://"):
        raise ConfigError(f"data.service={value!r}: the tf.data service speaks grpc; write grpc://HOST:PORT")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ConfigError(f"data.service={value!r} is not a dispatcher address; write HOST:PORT or grpc://HOST:PORT "
                          "(null: no service)")
    return f"grpc://{host}:{port}", host, int(port)


def through_service(dataset, address: str, job_name: str, timeout: float = 10.0):
    """``dataset`` processed by the tf.data service at ``address``, as one endless stream.

    Sharding is ``DYNAMIC``: the dispatcher hands splits of the source (the
    element ranges of in-memory arrays, the file names of a folder or of a
    tfds build's record files) to the service workers as they ask, so each
    example is processed once per pass over the data, whichever worker does it.
    Every trainer of a cluster reads the same named job, so each batch goes to
    one trainer, and trainers must not shard again (auto-shard is set off).
    The passes are repeated: an epoch is a number of steps (``train.steps_per_epoch``,
    or the batches of one pass), so no trainer waits on an empty share.
    """
    import tensorflow as tf

    address, host, port = service_address(address)
    try:
        socket.create_connection((host, port), timeout=timeout).close()
    except OSError as exc:
        raise UserError(f"data.service={address}: no tf.data service dispatcher answers at {host}:{port} ({exc}); "
                        "start one (README: Distribution, data.service) or set data.service=null") from None
    distributed = dataset.apply(tf.data.experimental.service.distribute(
        processing_mode=tf.data.experimental.service.ShardingPolicy.DYNAMIC, service=address, job_name=job_name))
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.OFF
    return distributed.repeat().with_options(options)


def job_name(cfg, epochs_done: int) -> str:
    """A tf.data service job name the trainers of one run share (the config and where it resumes)."""
    digest = hashlib.sha1(json.dumps(cfg.to_dict(), sort_keys=True, default=str).encode()).hexdigest()[:12]
    return f"aigc_tf_{digest}_{epochs_done}"


# ------------------------------------------------------------------ launcher
def _ephemeral_range() -> tuple[int, int]:
    """The range the kernel draws outgoing connections' local ports from (Linux; else IANA's)."""
    try:
        low, high = (int(v) for v in Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split())
        return low, high
    except (OSError, ValueError):
        return 49152, 65535


def free_ports(count: int, host: str = "127.0.0.1") -> list[int]:
    """``count`` distinct ports that are free on ``host`` now, outside the ephemeral range.

    A port the OS hands out for ``bind(0)`` comes from the ephemeral range, which
    every outgoing connection (the workers' own gRPC channels, other jobs') also
    draws from, so it can be taken again between this call and the worker's
    bind ("Could not start gRPC server"). Ports are drawn at random below that
    range instead (from 20000, or 1024 if the range starts lower), each checked
    by binding it; the OS's choice is the fallback.
    """
    low, _ = _ephemeral_range()
    first = 20000 if low > 21000 else 1024
    rng = random.SystemRandom()
    ports: list[int] = []
    for _ in range(200 * count):
        if len(ports) == count or first >= low:
            break
        port = rng.randrange(first, low)
        if port not in ports and _bindable(host, port):
            ports.append(port)
    while len(ports) < count:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind((host, 0))
            port = s.getsockname()[1]
        if port not in ports:
            ports.append(port)
    return ports


def _bindable(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


def cpu_sets(workers: int) -> list[set[int] | None]:
    """Disjoint CPU sets, one per worker, when the machine has a CPU for each; else no pinning."""
    try:
        cpus = sorted(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return [None] * workers
    if len(cpus) < workers:
        return [None] * workers
    share = len(cpus) // workers
    return [set(cpus[i * share:(i + 1) * share]) for i in range(workers)]


def _describe(code: int | None) -> str:
    if code is None:
        return "still running"
    if code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    meaning = {0: "finished", 2: "user error", 3: "training diverged", EXIT_WORKER_LOST: "lost a peer",
               EXIT_PREEMPTED: "preempted, checkpoint saved", 130: "interrupted"}
    return f"exited {code}" + (f" ({meaning[code]})" if code in meaning else "")


def launch(argv: Sequence[str], workers: int, grace: float = 60.0, pin: bool = True, out=None,
           env: dict | None = None) -> int:
    """Run ``aigc-tf ARGV`` as ``workers`` local processes of one cluster; return an exit status.

    Each process gets ``TF_CONFIG`` for 127.0.0.1 and free ports, its own CPUs
    when the machine has enough (``pin``), and its output prefixed with
    ``[worker i]``. When one exits abnormally the others get ``grace`` seconds
    to stop on their own (a lost peer aborts their collectives within about
    10 s) and are then killed, so the job never hangs. SIGTERM or SIGINT to the
    launcher is passed on to every worker (they save a checkpoint and stop);
    workers still alive ``grace`` seconds later are killed.

    Returns 0 if every worker finished, else the first abnormal worker's status
    (128 + signal for a killed one).
    """
    out = out or sys.stdout
    ports = free_ports(workers)
    lock = threading.Lock()

    def say(text: str) -> None:
        with lock:
            print(text, file=out, flush=True)

    procs, readers = [], []
    cpus = cpu_sets(workers) if pin else [None] * workers
    base_env = dict(os.environ if env is None else env)
    try:
        for i in range(workers):
            child_env = {**base_env, "TF_CONFIG": json.dumps(tf_config(ports, i)), "PYTHONUNBUFFERED": "1"}
            cmd = [sys.executable, "-m", "aigc_tf.cli", *argv]
            # A session of its own: Ctrl-C in the terminal reaches the launcher only, which passes
            # SIGTERM on to every worker, so they all stop after the same step and save it.
            p = subprocess.Popen(cmd, env=child_env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                 stdin=subprocess.DEVNULL, bufsize=1, start_new_session=True)
            procs.append(p)
            if cpus[i]:
                # Before TensorFlow starts in the child (it sizes its thread pools from the affinity).
                with contextlib.suppress(OSError):
                    os.sched_setaffinity(p.pid, cpus[i])
            where = f", CPUs {sorted(cpus[i])}" if cpus[i] else ""
            say(f"[launcher] worker {i}{' (chief)' if i == 0 else ''}: pid {p.pid}, 127.0.0.1:{ports[i]}{where}")

            def pump(p=p, i=i):
                for line in p.stdout:
                    say(f"[worker {i}] {line.rstrip()}")

            t = threading.Thread(target=pump, daemon=True)
            t.start()
            readers.append(t)
        return _supervise(procs, grace, say)
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
        for p in procs:
            with contextlib.suppress(Exception):
                p.wait(timeout=10)
        for t in readers:
            t.join(timeout=5)


def _supervise(procs: list, grace: float, say) -> int:
    """Wait for the workers; on the first abnormal exit or a signal, bound the rest by ``grace``."""
    received = []

    def forward(signum, frame):
        received.append(signum)
        for p in procs:
            if p.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    p.send_signal(signal.SIGTERM)

    previous = {}
    if threading.current_thread() is threading.main_thread():
        for s in (signal.SIGTERM, signal.SIGINT):
            previous[s] = signal.signal(s, forward)
    deadline = None
    first_bad = None
    try:
        while True:
            codes = [p.poll() for p in procs]
            for i, code in enumerate(codes):
                if code not in (None, 0) and first_bad is None:
                    first_bad = i
                    say(f"[launcher] worker {i} {_describe(code)}; waiting up to {grace:.0f} s for the others")
                    deadline = time.monotonic() + grace
            if received and deadline is None:
                say(f"[launcher] {signal.Signals(received[0]).name}: passed on to the workers; "
                    f"waiting up to {grace:.0f} s for their checkpoint")
                deadline = time.monotonic() + grace
            if all(c is not None for c in codes):
                break
            if deadline is not None and time.monotonic() > deadline:
                for i, p in enumerate(procs):
                    if p.poll() is None:
                        say(f"[launcher] worker {i} still running after {grace:.0f} s: killing it")
                        p.kill()
                for p in procs:
                    p.wait()
                break
            time.sleep(0.2)
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
    codes = [p.returncode for p in procs]
    say("[launcher] " + ", ".join(f"worker {i} {_describe(c)}" for i, c in enumerate(codes)))
    if all(c == 0 for c in codes):
        return 0
    if received and all(c in (0, EXIT_PREEMPTED) for c in codes):
        return EXIT_PREEMPTED
    bad = codes[first_bad] if first_bad is not None else next(c for c in codes if c != 0)
    return 128 - bad if bad < 0 else bad
