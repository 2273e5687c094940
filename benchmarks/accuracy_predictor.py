"""Accuracy predictor quality: Kendall tau of the predicted vs the measured proxy accuracy
of held-out subnets.

Trains the weight-sharing supernet (default settings: sklearn digits, the default epochs),
measures subnets on the validation split (MobileNetV2 reference, largest, smallest, then
uniformly random ones; BatchNorm recalibrated per subnet), fits the MLP predictor on 80 % of
them and ranks the other 20 %. Prints progress to stderr and as its LAST line:
    kendall_tau=<x> held_out=<n> measured=<m> seconds=<s>
The project's goal is kendall_tau >= 0.6. ``--out DIR`` keeps supernet.pt / measured.json
(a re-run with the same settings reuses them).
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from naas_tl.errors import NaasError  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", default=None, help="ImageFolder or CIFAR-10 python directory "
                    "(default: scikit-learn's digits)")
    ap.add_argument("--epochs", type=int, default=None)
    ap.add_argument("--n-measured", type=int, default=None,
                    help="subnets to measure (default: 60)")
    ap.add_argument("--ops", default="conv,shift,adder",
                    help="operator choices (conv,shift,adder or conv)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--out", default=None, help="keep/reuse supernet.pt and measured.json")
    args = ap.parse_args(argv)

    from naas_tl.nas.proxy import build_accuracy_model
    from naas_tl.nas.space import SearchSpace

    t0 = time.perf_counter()
    try:
        space = SearchSpace(op_choices=tuple(o.strip() for o in args.ops.split(",")))
        model = build_accuracy_model(space, args.data,
                                     n_measured=args.n_measured or 60, epochs=args.epochs,
                                     seed=args.seed, device=args.device, out_dir=args.out,
                                     num_threads=args.threads)
    except NaasError as exc:
        print(f"accuracy_predictor: error: {exc}", file=sys.stderr)
        return 2
    seconds = time.perf_counter() - t0
    acc = np.array([m["accuracy"] for m in model.measured])
    t = model.timings
    print(f"supernet training {t.get('train_s', 0):.1f} s; measuring {len(acc)} subnets "
          f"{t.get('measure_s', 0):.1f} s (mean {t.get('measure_mean_s', 0):.3f} s, max "
          f"{t.get('measure_max_s', 0):.3f} s); predictor {t.get('fit_s', 0):.1f} s",
          file=sys.stderr)
    q = np.percentile(acc, [0, 25, 50, 75, 100])
    print("measured val accuracy: min {:.3f} q1 {:.3f} median {:.3f} q3 {:.3f} max {:.3f}"
          .format(*q), file=sys.stderr)
    for m in model.measured[:3]:
        print(f"  {m['name']}: {m['accuracy']:.3f}", file=sys.stderr)
    print(f"5-fold cross-validated kendall_tau={model.cv_tau:.3f}", file=sys.stderr)
    print(f"kendall_tau={model.tau:.4f} held_out={model.held_out} "
          f"measured={len(model.measured)} seconds={seconds:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
