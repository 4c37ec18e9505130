"""The Python side of the benchmark: joblib.Memory on the rows run.mjs times,
plus the BLAKE3 raw limit for hashing. Timed like the Node side (medians of
samples), on the same bytes (the Node side leaves its data files), in its own
process. Prints JSON on stdout.

    joblib_bench.py CONFIG_JSON               the table rows
    joblib_bench.py --memory OP DIR N         peak RSS of one store/load, for the memory section
"""
import gc
import itertools
import json
import os
import statistics
import sys
import time

import blake3
import joblib
import numpy as np

NO_ASYNC = {"na": "joblib has no async API"}


def measure(op, samples, inner=1, before=None, check=None):
    """Median seconds per op over `samples` samples of `inner` ops (before/check untimed)."""
    times = []
    for s in range(samples):
        if before:
            before()
        t0 = time.perf_counter_ns()
        for _ in range(inner):
            r = op()
        times.append((time.perf_counter_ns() - t0) / 1e9 / inner)
        if s == 0 and check:
            check(r)
        del r
        gc.collect()  # drop large results between samples
    return statistics.median(times)


def attempt(f):
    try:
        return {"t": f()}
    except Exception as e:  # a failing row prints its error in the cell
        return {"error": f"{type(e).__name__}: {e}".splitlines()[0][:160]}


def same_as(want):
    def check(r):
        if r.shape != want.shape or r[0] != want[0] or r[-1] != want[-1]:
            raise ValueError(f"wrong result: shape {r.shape}")
    return check


def is_memmap(r):
    if not isinstance(r, np.memmap):
        raise ValueError(f"not memory-mapped: {type(r).__name__}")


def run(cfg):
    tmp, rows, notes = cfg["tmp"], {}, {}
    mem_dir = lambda name: joblib.Memory(location=os.path.join(tmp, name), verbose=0)
    counter = itertools.count(10**6)  # fresh arguments for misses

    # 1. Small hit and miss.
    small_data = np.fromfile(os.path.join(tmp, "raw-small", "small.bin"), dtype="<f8")

    def small(i, tag):
        return small_data

    memory = mem_dir("joblib-small")
    f = memory.cache(small)
    fm = joblib.Memory(location=memory.location, mmap_mode="r", verbose=0).cache(small)
    hit = dict(samples=cfg["smallSamples"], inner=cfg["smallInner"])
    miss = dict(samples=cfg["smallSamples"], inner=cfg["missInner"])
    f(7, "s")
    rows["small-hit-sync"] = {"joblib": attempt(lambda: measure(lambda: f(7, "s"), check=same_as(small_data), **hit))}
    rows["small-hit-async"] = {"joblib": NO_ASYNC}
    rows["small-hit-mmap"] = {"joblib": attempt(lambda: measure(lambda: fm(7, "s"), check=is_memmap, **hit))}
    clear = lambda: memory.clear(warn=False)
    rows["small-miss-sync"] = {"joblib": attempt(lambda: measure(lambda: f(next(counter), "s"), before=clear, **miss))}
    rows["small-miss-async"] = {"joblib": NO_ASYNC}
    clear()

    # 2. Large store and load; 3. hashing a large argument.
    for size in cfg["large"]:
        label = size["label"]
        data = np.fromfile(os.path.join(tmp, f"raw-{label}", "large.bin"), dtype="<f8")
        n = data.size

        def large(n):
            return data

        memory = mem_dir(f"joblib-{label}")
        f = memory.cache(large)
        fm = joblib.Memory(location=memory.location, mmap_mode="r", verbose=0).cache(large)
        R = dict(samples=cfg["largeRepeats"])
        rows[f"store-{label}-sync"] = {"joblib": attempt(lambda: measure(lambda: f(n), before=lambda: memory.clear(warn=False), **R))}
        rows[f"store-{label}-async"] = {"joblib": NO_ASYNC}
        rows[f"load-{label}-sync"] = {"joblib": attempt(lambda: measure(lambda: f(n), check=same_as(data), **R))}
        rows[f"load-{label}-async"] = {"joblib": NO_ASYNC}
        rows[f"load-{label}-mmap"] = {"joblib": attempt(lambda: measure(lambda: fm(n), check=is_memmap, **R))}
        memory.clear(warn=False)

        if label in cfg["hashSizes"]:
            tiny_data = np.full(8, 0.5)

            def tiny(x):
                return tiny_data

            t = memory.cache(tiny)
            t(data)
            # BLAKE3 on all cores, as this package hashes above 1 MiB; one thread in the notes
            b3 = lambda threads: blake3.blake3(memoryview(data).cast("B"), max_threads=threads).digest()
            rows[f"hash-{label}"] = {
                "joblib": attempt(lambda: measure(lambda: t(data), **R)),
                "raw": attempt(lambda: measure(lambda: b3(blake3.blake3.AUTO), **R)),
            }
            notes[f"blake3-1thread-{label}"] = attempt(lambda: measure(lambda: b3(1), **R))
            memory.clear(warn=False)
        del data, f, fm
        gc.collect()

    # 4. Hit cost with many entries; making them is capped in time.
    tiny_entry = np.full(8, 0.25)

    def entry(i):
        return tiny_entry

    for count in cfg["entryCounts"]:
        memory = mem_dir(f"joblib-entries-{count}")
        f = memory.cache(entry)
        t0 = time.perf_counter()
        made = 0
        while made < count and time.perf_counter() - t0 < cfg["joblibFillSeconds"]:
            f(made)
            made += 1
        notes[f"fill-joblib-{count}"] = {"seconds": time.perf_counter() - t0, "made": made}
        for i in range(made):  # every entry hit once first, as on the Node side
            f(i)
        state = {"s": 0}

        def next_hit():  # each call hits another entry, as on the Node side
            state["s"] = (state["s"] + 7919) % made
            return f(state["s"])

        rows[f"entries-{count}"] = {"joblib": attempt(lambda: measure(next_hit, **hit))}
        memory.clear(warn=False)

    return {"rows": rows, "notes": notes}


def vm_hwm_kb():
    with open("/proc/self/status") as s:
        return next(int(line.split()[1]) for line in s if line.startswith("VmHWM:"))


def memory_case(op, location, n):
    """Peak RSS over the baseline while storing or loading an n-element float64 array."""
    def big(n):
        return np.full(n, 1.5)

    memory = joblib.Memory(location=location, mmap_mode="r" if op == "load-mmap" else None, verbose=0)
    f = memory.cache(big)
    gc.collect()
    base = vm_hwm_kb()
    r = f(n)  # a store (miss) for op=store, a load for the others
    after_call = vm_hwm_kb()
    total = float(np.sum(r))  # touch every element, so a mapped load counts its pages too
    after_read = vm_hwm_kb()
    assert total == 1.5 * n, total
    print(json.dumps({"base": base, "afterCall": after_call, "afterRead": after_read}))


if __name__ == "__main__":
    if sys.argv[1] == "--memory":
        memory_case(sys.argv[2], sys.argv[3], int(sys.argv[4]))
    else:
        out = run(json.loads(sys.argv[1]))
        out["versions"] = {
            "python": sys.version.split()[0],
            "numpy": np.__version__,
            "joblib": joblib.__version__,
            "blake3": getattr(blake3, "__version__", "?"),
        }
        print(json.dumps(out))
