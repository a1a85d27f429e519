#!/usr/bin/env python3
"""Paired timing of two shell commands: `paired.py RUNS JSON_OUT NAME_A CMD_A NAME_B CMD_B`.

hyperfine runs all of A, then all of B, so a machine that gets busier half-way (other builds on a
shared 2-core box) moves one side only. Here each pair runs A and B back to back, alternating
which goes first (ABBA...), and the statistic is the median of the per-pair differences B - A,
which such drift cancels out of. Output is discarded, as hyperfine does.
"""

import json
import statistics
import subprocess
import sys
import time


def timed(cmd: str) -> float:
    start = time.perf_counter()
    done = subprocess.run(
        ["/bin/sh", "-c", cmd],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        sys.exit(f"paired.py: command failed with exit code {done.returncode}: {cmd}")
    return elapsed


def main() -> None:
    runs, out, name_a, cmd_a, name_b, cmd_b = sys.argv[1:7]
    runs = int(runs)
    a_times, b_times = [], []
    for i in range(runs):
        if i % 2 == 0:
            a_times.append(timed(cmd_a))
            b_times.append(timed(cmd_b))
        else:
            b_times.append(timed(cmd_b))
            a_times.append(timed(cmd_a))
    diffs = [b - a for a, b in zip(a_times, b_times)]
    result = {
        "runs": runs,
        "a": {"name": name_a, "command": cmd_a, "times": a_times,
              "median": statistics.median(a_times)},
        "b": {"name": name_b, "command": cmd_b, "times": b_times,
              "median": statistics.median(b_times)},
        "median_difference_b_minus_a": statistics.median(diffs),
        "differences": diffs,
    }
    with open(out, "w") as f:
        json.dump(result, f, indent=1)
    q1, _, q3 = statistics.quantiles(diffs, n=4)
    print(f"paired, {runs} pairs (ABBA order):")
    print(f"  {name_a}: median {result['a']['median'] * 1000:.1f} ms")
    print(f"  {name_b}: median {result['b']['median'] * 1000:.1f} ms")
    print(f"  per-pair difference ({name_b}) - ({name_a}): median "
          f"{result['median_difference_b_minus_a'] * 1000:.1f} ms "
          f"(quartiles {q1 * 1000:.1f} .. {q3 * 1000:.1f} ms)")


if __name__ == "__main__":
    main()
