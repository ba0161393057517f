"""`python -m fastconv.demo digits [--epochs N] [--no-torch] [--plot PATH] [--threads N] [--transfer]`."""
import argparse
import sys


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m fastconv.demo", description=__doc__)
    parser.add_argument("demo", choices=["digits"], help="which demo to run")
    parser.add_argument("--epochs", type=int, default=None, help="epochs (default 12; 8 per phase with --transfer)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--lr", type=float, default=3e-3, help="peak learning rate of the one-cycle schedule")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--no-torch", action="store_true", help="skip the comparison run with torch.nn layers")
    parser.add_argument("--plot", default=None,
                        help="PNG path (default digits_training.png, or digits_transfer.png with --transfer); "
                             "'' to skip")
    parser.add_argument("--threads", type=int, default=1,
                        help="intra-op threads for both builds (default 1: LeNet-5 on batches of 32 is too small "
                             "to gain from more, and extra threads on a busy machine slow training down many "
                             "times; 0 keeps torch's default)")
    parser.add_argument("--transfer", action="store_true",
                        help="pretrain on 0-4, retrain the head on 5-9: frozen base vs full fine-tuning")
    args = parser.parse_args(argv)
    from .._optional import missing_message

    plots = ["matplotlib"] if args.plot != "" else []
    err = missing_message("demo", ["numpy", "sklearn"] + plots, "python -m fastconv demo")
    if err:
        print(f"fastconv.demo: {err}", file=sys.stderr)
        return 2
    import torch

    from .digits import run_digits, run_transfer

    threads_before = torch.get_num_threads()
    if args.threads > 0:
        torch.set_num_threads(args.threads)  # fastconv's OpenMP kernels follow torch's setting
    try:
        if args.transfer:
            run_transfer(args.epochs or 8, args.seed, "digits_transfer.png" if args.plot is None else args.plot,
                         args.lr, args.batch_size)
        else:
            run_digits(args.epochs or 12, args.seed, not args.no_torch,
                       "digits_training.png" if args.plot is None else args.plot, args.lr, args.batch_size)
    finally:
        torch.set_num_threads(threads_before)  # main() may be called from a larger program (or a test)
    return 0


if __name__ == "__main__":
    sys.exit(main())
