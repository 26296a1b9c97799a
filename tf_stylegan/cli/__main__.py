"""``python -m tf_stylegan.cli``: the ``tf-stylegan`` command."""

import sys

from tf_stylegan.cli import main

if __name__ == "__main__":
    sys.exit(main())
