"""``python -m tf_stylegan.metrics.train_emoji_classifier [--out FILE]``: trains the quality meter's
emoji classifier (1-2 minutes on a 2-core CPU, deterministic) and writes its weights, by default
to the packaged file; prints the held-out accuracy and the SHA-256 that ``PACKAGED_SHA256`` must hold.
(A module of its own: the package imports :mod:`~tf_stylegan.metrics.emoji_classifier`, so running
that one with ``-m`` would execute it twice.)"""

import argparse
import os

from tf_stylegan.metrics import emoji_classifier


def main(argv=None):
    parser = argparse.ArgumentParser(
        description="Trains the quality meter's emoji classifier and writes its weights.")
    parser.add_argument("--out", default=emoji_classifier.PACKAGED_WEIGHTS,
                        help=f"weights file (default: the packaged {emoji_classifier.WEIGHTS_FILE})")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--epochs", type=int, default=25)
    args = parser.parse_args(argv)
    trained = emoji_classifier.train_classifier(epochs=args.epochs, seed=args.seed)
    digest = emoji_classifier.save_weights(trained.embedding, args.out)
    print(f"wrote {args.out} ({os.path.getsize(args.out) / 1e3:.0f} kB), SHA-256 {digest}")
    if (os.path.abspath(args.out) == emoji_classifier.PACKAGED_WEIGHTS
            and digest != emoji_classifier.PACKAGED_SHA256):
        print(f"the packaged weights changed: set PACKAGED_SHA256 = \"{digest}\" "
              f"in {emoji_classifier.__file__}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
