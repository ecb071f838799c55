"""Where one gradient update's time goes on the CPU, from XLA's own profile.

    python tools/profile_update.py [--batch_size 256] [--hidden_dim 256] [--calls 100]
                                   [--out book/data/bench/profile_b256_w256.json]

Builds the default Trainer (HalfCheetah-v5's shapes, 1 update per call) with a full
replay buffer, times `calls` steady calls of Trainer.train (best of 3 windows, untraced),
then runs `calls` more under jax.profiler with XLA's per-operation trace events switched
on (XLA_FLAGS=--xla_cpu_enable_xprof_traceme=true, added before jax starts) and reads the
trace back with jax.profiler.ProfileData. Every operation XLA's CPU runtime executed
(a "thunk": a fused loop, a library matmul, a copy) is one event on one of XLA's worker
threads; the events are summed per kind of operation and per call. The kinds:

- matmul (YNNPACK): matrix products that XLA hands to the YNNPACK library, with
  whatever element-wise work it fused into them;
- matmul (XLA dot): the other matrix products (here the weight gradients, which contract
  over the batch), run by XLA's own dot emitter;
- element-wise fusions: loops XLA generated for everything else that is arithmetic (the
  optimizer, activations, softmax, the loss, the Polyak averaging);
- scatter and gather: the C51 projection's scatter-adds and the replay sampling;
- copies and transposes: data moved, not computed;
- control flow: lax.cond (the delayed actor update) and while loops themselves, not the
  operations inside them.

The times are CPU time summed over threads (two threads can run operations at once), so
they add up to more than a call's wall time; their proportions are what to read. Tracing
slows a call down (compare the untraced and traced milliseconds per call). It also counts the
copy instructions in the compiled update, and how many of them copy arrays of at most 4
elements (scalars, words of the random-key generator).
"""

import argparse
import collections
import math
import os
import shlex
import sys
import tempfile
import time
from pathlib import Path

RUNTIME_EVENTS = ("ThunkExecutor", "SlinkyThreadPool")  # waiting and bookkeeping


def kind_of(event_name):
    """The kind of operation a thunk event belongs to, from XLA's instruction name
    (for example "ynn_fusion.36", "multiply_add_fusion.12", "transpose_copy_fusion")."""
    name = event_name.split(".")[0]
    words = set(name.split("_"))
    if name == "ynn_fusion":
        return "matmul (YNNPACK)"
    if name in ("dot", "dot_general"):
        return "matmul (XLA dot)"
    if name in ("cond", "conditional", "while", "call"):
        return "control flow"
    if words & {"scatter", "gather"}:
        return "scatter and gather"
    if words & {"copy", "transpose"}:
        return "copies and transposes"
    return "element-wise fusions"


def copy_instructions(hlo_text):
    """(all, small): copy instructions in an optimized HLO module's text, and those of
    arrays with at most 4 elements (scalars and key words)."""
    from fasttd3.bench import copy_shapes

    sizes = [math.prod(shape) for shape in copy_shapes(hlo_text)]
    return len(sizes), sum(size <= 4 for size in sizes)


def positive_int(text):
    """argparse type: an integer of at least 1 (argparse turns the error into one line)."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(
            f"must be an integer of at least 1, got {text!r}"
        )
    return value


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batch_size", type=positive_int, default=256)
    parser.add_argument("--hidden_dim", type=positive_int, default=256)
    parser.add_argument("--calls", type=positive_int, default=100)
    parser.add_argument("--out", metavar="FILE.json")
    args = parser.parse_args(argv)
    flag = "--xla_cpu_enable_xprof_traceme=true"
    os.environ["XLA_FLAGS"] = f"{os.environ.get('XLA_FLAGS', '')} {flag}".strip()

    import jax
    from jax.profiler import ProfileData

    from fasttd3.bench import ACTION_DIM, OBS_DIM, filled_state, machine, write_report
    from fasttd3.checks import ConfigError, check_numbers
    from fasttd3.training import Config, Trainer

    if jax.default_backend() != "cpu":
        print(
            "error: this profile reads XLA's CPU runtime; run it with JAX_PLATFORMS=cpu"
        )
        return 2
    config = Config(
        env="HalfCheetah-v5", batch_size=args.batch_size, hidden_dim=args.hidden_dim
    )
    try:
        check_numbers(config)  # the command line's own checks (the width's funnel)
    except ConfigError as error:
        print(f"error: {error}")
        return 2
    trainer = Trainer(config, OBS_DIM, ACTION_DIM)
    state = trainer.train(filled_state(trainer, config, OBS_DIM, ACTION_DIM))[0]

    hlo = trainer.train.lower(state).compile().as_text()
    copies, small_copies = copy_instructions(hlo)

    def timed_calls(state):
        start = time.perf_counter()
        for _ in range(args.calls):
            state, _ = trainer.train(state)
        jax.block_until_ready(state)
        return state, (time.perf_counter() - start) / args.calls

    windows = []
    for _ in range(3):
        state, seconds = timed_calls(state)
        windows.append(seconds)
    with tempfile.TemporaryDirectory() as folder:
        jax.profiler.start_trace(folder)
        state, traced = timed_calls(state)
        jax.profiler.stop_trace()
        trace = next(Path(folder).rglob("*.xplane.pb"))
        profile = ProfileData.from_file(str(trace))
        seconds = collections.Counter()
        counts = collections.Counter()
        for plane in profile.planes:
            for line in plane.lines:
                if not line.name.startswith("tf_XLA"):  # XLA's worker threads only
                    continue
                for event in line.events:
                    # skip the runtime's own waiting and the end markers of
                    # asynchronous operations (their work is in the start event)
                    if event.name.startswith((*RUNTIME_EVENTS, "end: ")):
                        continue
                    kind = kind_of(event.name)
                    seconds[kind] += event.duration_ns * 1e-9 / args.calls
                    counts[kind] += 1 / args.calls
    total = sum(seconds.values())
    rows = [
        {"kind": kind, "ms_per_call": 1e3 * s, "share": s / total,
         "events_per_call": counts[kind]}
        for kind, s in seconds.most_common()
    ]  # fmt: skip
    report = {
        "command": shlex.join(
            ["python", "tools/profile_update.py", *(argv or sys.argv[1:])]
        ),
        "machine": machine(),
        "config": {
            "batch_size": args.batch_size,
            "hidden_dim": args.hidden_dim,
            "num_updates": 1,
            "calls": args.calls,
        },
        "ms_per_call_untraced": 1e3 * min(windows),
        "ms_per_call_traced": 1e3 * traced,
        "thunk_ms_per_call": 1e3 * total,
        "kinds": rows,
        "copy_instructions": copies,
        "copy_instructions_of_small_arrays": small_copies,
    }
    print(
        f"batch {args.batch_size}, width {args.hidden_dim}: "
        f"{report['ms_per_call_untraced']:.2f} ms per update untraced (best of 3 "
        f"windows), {report['ms_per_call_traced']:.2f} traced; XLA operations "
        f"{report['thunk_ms_per_call']:.2f} ms of CPU time per update"
    )
    print(f"  compiled update: {copies} copy instructions, {small_copies} of them of "
          "arrays of at most 4 elements")  # fmt: skip
    for row in rows:
        print(
            f"  {row['kind']:>22}: {row['ms_per_call']:6.2f} ms ({row['share']:4.0%}), "
            f"{row['events_per_call']:5.1f} operations"
        )
    if args.out:
        print(f"wrote {write_report(args.out, report)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
